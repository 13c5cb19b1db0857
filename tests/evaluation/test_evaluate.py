"""evaluate: metrics on known rankings, BM25, STS loading, the contract keys, bad input."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from pipeline.config import EvaluateConfig, RecipeError, recipe_from_dict
from pipeline.evaluation.evaluate import (
    EvalError,
    TextMemo,
    evaluate,
    rankings,
    retrieval_set,
    retrieval_sets,
)
from pipeline.evaluation.metrics import RetrievalSet, ir_metrics
from pipeline.evaluation.sts import domain_sts_pairs, load_sts
from pipeline.rundir import RunDir, RunError
from pipeline.training.train import train


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


def test_bm25_wins_on_an_exact_identifier_and_the_hybrid_keeps_it():
    rs = RetrievalSet()
    rs.queries = {"q": "where is parse_config_file defined"}
    rs.corpus = {"right": "def parse_config_file(path):\n    return open(path).read()",
                 "wrong1": "class NetworkClient:\n    def send(self, data): ...",
                 "wrong2": "The cache keeps recent items in memory."}
    rs.relevant = {"q": {"right"}}

    class Constant:  # a dense model that cannot tell the texts apart: the hybrid must lean on BM25
        def encode_document(self, texts, **kw):
            return np.ones((len(texts), 4), dtype=np.float32) / 2

        encode_query = encode_document

    ranked = rankings(rs, {"base": TextMemo(Constant(), 8)}, 10, alpha=0.8)
    assert ranked["bm25"][0][0]["corpus_id"] == "right" and ranked["hybrid"][0][0]["corpus_id"] == "right"
    assert ir_metrics(rs, ranked["bm25"])["recall@1"] == 1.0


def test_retrieval_set_puts_the_context_header_on_every_document():
    pairs = [{"anchor": "Load the file.", "positive": "def load(p): ...", "positive_chunk_id": "c1", "anchor_chunk_id": "c1",
              "path": "a.py", "pair_type": "docstring_code", "kind": "code"}]
    chunks = [{"id": "c1", "text": "x", "path": "a.py", "start_line": 1, "end_line": 2, "symbol": "load"},
              {"id": "c2", "text": "other", "path": "b.md", "start_line": 1, "end_line": 1, "symbol": "Guide > Install"}]
    rs = retrieval_set(pairs, chunks, used_chunk_ids={"c1"}, context=True)
    assert set(rs.corpus.values()) == {"a.py load\ndef load(p): ...", "b.md Guide > Install\nother"}


def test_retrieval_set_excludes_the_chunks_pairs_came_from():
    pairs = [{"anchor": "Load the file.", "positive": "def load(p): ...", "positive_chunk_id": "c1", "anchor_chunk_id": "c1",
              "path": "a.py", "pair_type": "docstring_code", "kind": "code"}]
    chunks = [{"id": "c1", "text": '"""Load the file."""\ndef load(p): ...', "path": "a.py", "start_line": 1, "end_line": 2},
              {"id": "c2", "text": "other", "path": "b.py", "start_line": 1, "end_line": 1}]
    rs = retrieval_set(pairs, chunks, used_chunk_ids={"c1"})
    assert set(rs.corpus.values()) == {"def load(p): ...", "other"}  # c1 holds the anchor verbatim: not a distractor
    assert list(rs.queries.values()) == ["Load the file."]


def _pairs_and_corpus(n_train: int, n_holdout: int, n_chunks: dict[str, int]):
    def pair(i, split):
        return {"anchor": f"query {split} {i}", "positive": f"def f{split}{i}(): ...", "positive_chunk_id": f"{split}{i}",
                "anchor_chunk_id": f"{split}{i}", "path": f"{split}{i}.py", "pair_type": "docstring_code", "kind": "code"}

    pairs = {split: [pair(i, split) for i in range(n)] for split, n in (("train", n_train), ("holdout", n_holdout))}
    corpus = [{"id": f"{split}{i}", "text": f"chunk {split} {i}", "path": f"{split}{i}.py", "start_line": 1, "end_line": 2,
               "split": split, "symbol": ""} for split in ("train", "holdout") for i in range(n_chunks[split])]
    return pairs, corpus


@pytest.mark.parametrize("n_train, draws, expected", [(50, 4, 4), (25, 4, 2), (7, 4, 1), (50, 1, 1)])
def test_the_train_side_is_disjoint_draws_of_the_holdouts_size_and_shape(n_train, draws, expected):
    pairs, corpus = _pairs_and_corpus(n_train, 10, {"train": 200, "holdout": 60})
    holdout, train_sets, _ = retrieval_sets(pairs, corpus, EvaluateConfig(train_draws=draws), context=False, seed=3)
    assert len(train_sets) == expected
    queries = [q for rs in train_sets for q in rs.queries.values()]
    assert len(queries) == len(set(queries))  # disjoint: no train query counted twice
    for rs in train_sets:
        assert len(rs.queries) == min(10, n_train)
        if n_train >= 10:
            assert len(rs.corpus) == len(holdout.corpus)  # the holdout's shape: its positives and as many distractors


def test_train_draws_below_one_is_refused():
    with pytest.raises(RecipeError, match="train_draws"):
        EvaluateConfig(train_draws=0)


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


# questions a user of the fixture repository would type (tests/support.py FIXTURE_FILES)
FIXTURE_QUESTIONS = [
    {"query": "how do I read the cache settings from disk", "relevant": [{"path": "pkg/cache.py", "symbol": "load_cache"}]},
    {"query": "register a new network item", "relevant": [{"path": "pkg/network.py", "symbol": "NetworkManager.add_item"}]},
    {"query": "what happens when the storage file is busy", "relevant": [{"path": "pkg/storage.py", "symbol": "load_storage"},
                                                                           {"path": "docs/storage.md", "contains": "retries when the file is busy"}]},
    {"query": "installing the project", "relevant": [{"path": "README.md", "contains": "pip install"}]},
    {"query": "keep track of tokenizer objects", "relevant": [{"path": "pkg/tokenizer.py", "contains": "Keep track of every tokenizer object"}]},
]


@pytest.fixture(scope="module")
def trained_run(built_run, tmp_path_factory) -> RunDir:
    run = RunDir(tmp_path_factory.mktemp("evaluate") / "run")
    shutil.copytree(built_run, run.root)
    questions = run.root.parent / "questions.jsonl"
    questions.write_text("\n".join(json.dumps(q) for q in FIXTURE_QUESTIONS) + "\n")
    recipe = recipe_from_dict(run.read_recipe().to_dict(), ["train.max_steps=4", "evaluate.mteb=true", f"evaluate.questions={questions}"])
    run.config.write_text(recipe.to_yaml())
    train(run.root, recipe)
    return run


def test_evaluate_writes_the_contract(trained_run):
    metrics = evaluate(trained_run.root)
    on_disk = json.loads(trained_run.metrics.read_text())
    assert on_disk == json.loads(json.dumps(metrics))
    for model in ("base", "tuned", "bm25", "hybrid"):
        assert set(on_disk["holdout"][model]) >= {"ndcg@10", "mrr@10", "recall@1", "recall@10"}
    q = on_disk["questions"]  # the question set, over the whole corpus (README "Question sets")
    assert q["n"] == len(FIXTURE_QUESTIONS) and q["corpus"] == trained_run.read_manifest()["counts"]["chunks"]
    for model in ("base", "tuned", "bm25", "hybrid"):
        assert set(q[model]) == {"ndcg@10", "mrr@10", "recall@1", "recall@5", "recall@10"}
        assert all(0 <= v <= 1 for v in q[model].values())
    lo, hi = q["delta_ci"]
    assert lo <= q["delta"] <= hi
    assert [p["query"] for p in q["per_question"]] == [f["query"] for f in FIXTURE_QUESTIONS]
    assert all(set(p["rank"]) == {"base", "tuned", "bm25", "hybrid"} for p in q["per_question"])
    assert on_disk["added_gap"] == pytest.approx(on_disk["overfit_gap"] - on_disk["base_gap"], abs=1e-4)
    assert on_disk["added_gap_ci"][0] <= on_disk["added_gap_ci"][1]
    assert len(list((trained_run.root / "index").glob("*.npy"))) == 2  # base and tuned corpus embeddings, kept
    for model in ("base", "tuned"):
        assert set(on_disk["train_sample"][model]) >= {"ndcg@10", "mrr@10", "recall@1", "recall@10"}
    assert on_disk["overfit_gap"] == pytest.approx(on_disk["train_sample"]["tuned"]["ndcg@10"] - on_disk["holdout"]["tuned"]["ndcg@10"])
    # the train side is the mean over its draws, so the gap tuning added is the mean of each draw's
    assert len(on_disk["added_gap_by_draw"]) == on_disk["train_sample_size"]["draws"] >= 1
    assert on_disk["added_gap"] == pytest.approx(np.mean(on_disk["added_gap_by_draw"]), abs=1e-3)
    assert set(on_disk["sts"]) >= {"source", "base_spearman", "tuned_spearman"} and on_disk["sts"]["n"] == 1379
    assert isinstance(on_disk["final_train_loss"], float)
    # what was measured: the model's weights and the dataset (the gate and publish refuse metrics of another)
    assert on_disk["model_hash"] == trained_run.model_hash() and on_disk["dataset_hash"] == trained_run.read_manifest()["dataset_hash"]
    assert trained_run.provenance_problem() is None
    timings = trained_run.read_manifest()["timings"]["evaluate"]  # each part's seconds, beside the build's
    assert {"corpus", "holdout", "train_sample", "questions", "history", "sts", "mteb", "report"} <= set(timings)
    assert all(seconds >= 0 for seconds in timings.values())
    assert on_disk["holdout_by_type"] and on_disk["holdout_by_kind"]
    assert 0 <= on_disk["mteb"]["tuned"]["main_score"] <= 1
    assert list((trained_run.model / "mteb").rglob("RepotuneHoldoutRetrieval.json"))  # travels with the model
    report = trained_run.report.read_text()
    assert "| bm25 |" in report and "## Examples" in report and "## Question set" in report and "| hybrid |" in report
    assert (trained_run.plots / "retrieval.png").is_file()
    card = (trained_run.model / "README.md").read_text()
    assert "## repotune evaluation" in card and "model-index" in card and "Tuned by [repotune](https://" in card


def test_evaluate_without_a_model_says_to_train(built_run):
    with pytest.raises(RunError, match="repotune train"):
        evaluate(built_run)


def test_too_small_holdout_says_how_to_enlarge_it(trained_run, tmp_path):
    run = RunDir(tmp_path / "run")
    shutil.copytree(trained_run.root, run.root)
    recipe = recipe_from_dict(run.read_recipe().to_dict(), ["evaluate.min_queries=100000"])
    with pytest.raises(EvalError, match=r"split.holdout_fraction.*\(pairs kept \d+, dropped .*; split kept"):
        evaluate(run.root, recipe)  # the counts from stats/ that made it small: its real cause


def test_a_missing_question_set_is_refused_at_once_and_not_recorded(trained_run, tmp_path, capsys, monkeypatch):
    from pipeline.cli import main

    run = RunDir(tmp_path / "run")
    shutil.copytree(trained_run.root, run.root)
    config = run.config.read_text()
    import pipeline.evaluation.evaluate as evaluate_module

    monkeypatch.setattr(evaluate_module, "load_pairs", lambda run: pytest.fail("evaluation started"))
    assert main(["evaluate", str(run.root), "--set", f"evaluate.questions={tmp_path / 'MISSING.jsonl'}"]) == 2
    assert "MISSING.jsonl does not exist" in capsys.readouterr().err and run.config.read_text() == config


def test_a_question_with_no_relevant_chunk_is_an_error_naming_it(trained_run, tmp_path):
    from pipeline.evaluation.questions import QuestionError

    bad = tmp_path / "q.jsonl"
    bad.write_text(json.dumps({"query": "where is the moon", "relevant": [{"path": "pkg/moon.py", "symbol": "orbit"}]}) + "\n")
    recipe = recipe_from_dict(trained_run.read_recipe().to_dict(), [f"evaluate.questions={bad}", "evaluate.mteb=false"])
    run = RunDir(tmp_path / "run")
    shutil.copytree(trained_run.root, run.root)
    with pytest.raises(QuestionError, match=r"line 1 'where is the moon'"):
        evaluate(run.root, recipe)


def test_expansion_lets_bm25_find_a_chunk_by_its_training_commits_in_the_question_set(trained_run, tmp_path):
    """history.expand in evaluation as in search: the question set's BM25 (and so the hybrid) reads the
    chunk's training commit subjects; the dense models embed the same text as without it."""
    from support import add_commit_pairs

    from pipeline.dataset import load_corpus

    run = RunDir(tmp_path / "run")
    shutil.copytree(trained_run.root, run.root)
    target = next(r for r in load_corpus(run) if r["path"] == "pkg/network.py" and r["symbol"])
    add_commit_pairs(run, {"train": [("Quarantine zebra sockets after a timeout", target["id"])]})
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"query": "quarantine zebra storage", "relevant": [{"path": target["path"], "symbol": target["symbol"]}]}) + "\n")
    got = {}
    for cap in (0, 3):
        recipe = recipe_from_dict(run.read_recipe().to_dict(), [f"evaluate.questions={questions}", "evaluate.mteb=false",
                                                                f"history.expand={cap}"])
        got[cap] = evaluate(run.root, recipe)["questions"]
    assert got[0]["expanded_chunks"] == 0 and got[3]["expanded_chunks"] == 1
    # without it "storage" leads BM25 to the storage module; with it the two rare words lead to the chunk
    assert got[0]["per_question"][0]["rank"]["bm25"] != 1 and got[3]["per_question"][0]["rank"]["bm25"] == 1
    assert got[3]["base"] == got[0]["base"] and got[3]["tuned"] == got[0]["tuned"]
