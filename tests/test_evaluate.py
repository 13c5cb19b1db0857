"""evaluate: metrics on known rankings, BM25, STS loading, the contract keys, bad input."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from pipeline.config import recipe_from_dict
from pipeline.evaluate import (EvalError, RetrievalSet, code_tokens, domain_sts_pairs, evaluate, ir_metrics, load_sts,
                               rank_bm25, retrieval_set)
from pipeline.rundir import RunDir, RunError
from pipeline.train import train


def _known() -> RetrievalSet:
    rs = RetrievalSet()
    rs.queries = {"q1": "a", "q2": "b"}
    rs.corpus = {"d1": "x", "d2": "y", "d3": "z"}
    rs.relevant = {"q1": {"d1"}, "q2": {"d2"}}
    return rs


def test_metrics_of_a_known_ranking():
    rs = _known()
    ranked = [[{"corpus_id": "d1", "score": 0.9}, {"corpus_id": "d2", "score": 0.5}],   # q1: right at rank 1
              [{"corpus_id": "d3", "score": 0.9}, {"corpus_id": "d2", "score": 0.5}]]   # q2: right at rank 2
    m = ir_metrics(rs, ranked)
    assert m["mrr@10"] == pytest.approx((1 + 0.5) / 2)
    assert m["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3)) / 2)
    assert m["recall@1"] == pytest.approx(0.5) and m["recall@5"] == pytest.approx(1.0)
    assert ir_metrics(rs, ranked, ["q1"])["ndcg@10"] == pytest.approx(1.0)  # a subset: the per-type breakdown


def test_code_tokens_split_identifiers_and_keep_them():
    assert code_tokens("parse_config_file(HTTPServerError)") == ["parse", "config", "file", "parse_config_file", "http", "server", "error", "httpservererror"]


def test_bm25_wins_on_an_exact_identifier():
    rs = RetrievalSet()
    rs.queries = {"q": "where is parse_config_file defined"}
    rs.corpus = {"right": "def parse_config_file(path):\n    return open(path).read()",
                 "wrong1": "class NetworkClient:\n    def send(self, data): ...",
                 "wrong2": "The cache keeps recent items in memory."}
    rs.relevant = {"q": {"right"}}
    ranked = rank_bm25(rs, 10)
    assert ranked[0][0]["corpus_id"] == "right"
    assert ir_metrics(rs, ranked)["recall@1"] == 1.0


def test_retrieval_set_excludes_the_chunks_pairs_came_from():
    pairs = [{"anchor": "Load the file.", "positive": "def load(p): ...", "positive_chunk_id": "c1", "anchor_chunk_id": "c1",
              "path": "a.py", "pair_type": "docstring_code", "kind": "code"}]
    chunks = [{"id": "c1", "text": '"""Load the file."""\ndef load(p): ...', "path": "a.py", "start_line": 1, "end_line": 2},
              {"id": "c2", "text": "other", "path": "b.py", "start_line": 1, "end_line": 1}]
    rs = retrieval_set(pairs, chunks, used_chunk_ids={"c1"})
    assert set(rs.corpus.values()) == {"def load(p): ...", "other"}  # c1 holds the anchor verbatim: not a distractor
    assert list(rs.queries.values()) == ["Load the file."]


def test_sts_loader_reads_all_1379_rows_with_quoting_off():
    s1, s2, scores, source = load_sts("packaged:stsb_test")
    assert len(s1) == len(s2) == len(scores) == 1379
    assert 0.0 <= min(scores) and max(scores) <= 1.0
    assert any('"' in s for s in s1 + s2)  # the unbalanced quotes survive


def test_sts_loader_bad_input(tmp_path):
    with pytest.raises(EvalError, match="does not exist"):
        load_sts(str(tmp_path / "missing.tsv"))
    bad = tmp_path / "bad.tsv"
    bad.write_text("a\tb\tc\nx\ty\t1\n")
    with pytest.raises(EvalError, match=r"lacks column\(s\)"):
        load_sts(str(bad))


def test_domain_sts_grades_by_structure():
    chunks = [{"text": f"t{i}", "path": p, "symbol": s} for i, (p, s) in enumerate(
        [("a/x.py", "f"), ("a/x.py", "f"), ("a/x.py", "g"), ("a/y.py", "h"), ("b/z.py", "k"), ("b/z.py", "m")])]
    s1, s2, gold = domain_sts_pairs(chunks, 40, seed=1)
    assert set(gold) == {0.0, 1 / 3, 2 / 3, 1.0}
    assert len(s1) == len(s2) == len(gold)


@pytest.fixture(scope="module")
def trained_run(built_run, tmp_path_factory) -> RunDir:
    run = RunDir(tmp_path_factory.mktemp("evaluate") / "run")
    shutil.copytree(built_run, run.root)
    recipe = recipe_from_dict(run.read_recipe().to_dict(), ["train.max_steps=4", "evaluate.mteb=true"])
    run.config.write_text(recipe.to_yaml())
    train(run.root, recipe)
    return run


def test_evaluate_writes_the_contract(trained_run):
    metrics = evaluate(trained_run.root)
    on_disk = json.loads(trained_run.metrics.read_text())
    assert on_disk == json.loads(json.dumps(metrics))
    for model in ("base", "tuned", "bm25"):
        assert set(on_disk["holdout"][model]) >= {"ndcg@10", "mrr@10", "recall@1", "recall@10"}
    for model in ("base", "tuned"):
        assert set(on_disk["train_sample"][model]) >= {"ndcg@10", "mrr@10", "recall@1", "recall@10"}
    assert on_disk["overfit_gap"] == pytest.approx(on_disk["train_sample"]["tuned"]["ndcg@10"] - on_disk["holdout"]["tuned"]["ndcg@10"])
    assert set(on_disk["sts"]) >= {"source", "base_spearman", "tuned_spearman"} and on_disk["sts"]["n"] == 1379
    assert isinstance(on_disk["final_train_loss"], float)
    assert on_disk["holdout_by_type"] and on_disk["holdout_by_kind"]
    assert 0 <= on_disk["mteb"]["tuned"]["main_score"] <= 1
    assert list((trained_run.model / "mteb").rglob("RepotuneHoldoutRetrieval.json"))  # travels with the model
    report = trained_run.report.read_text()
    assert "| bm25 |" in report and "## Examples" in report
    assert (trained_run.plots / "retrieval.png").is_file()
    card = (trained_run.model / "README.md").read_text()
    assert "## repotune evaluation" in card and "model-index" in card


def test_evaluate_without_a_model_says_to_train(built_run):
    with pytest.raises(RunError, match="repotune train"):
        evaluate(built_run)


def test_too_small_holdout_says_how_to_enlarge_it(trained_run, tmp_path):
    run = RunDir(tmp_path / "run")
    shutil.copytree(trained_run.root, run.root)
    recipe = recipe_from_dict(run.read_recipe().to_dict(), ["evaluate.min_queries=100000"])
    with pytest.raises(EvalError, match="split.holdout_fraction"):
        evaluate(run.root, recipe)
