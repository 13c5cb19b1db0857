"""search: the embedded text, BM25 and dense scores, the hybrid rule, the stored index, the command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.cli import main
from pipeline.common import embed_precision
from pipeline.retrieval.search import (
    Index,
    SearchError,
    bm25_scores,
    code_tokens,
    commit_subjects,
    corpus_embeddings,
    fuse,
    run_subjects,
    search,
    top_k,
)
from pipeline.rundir import RunDir


def test_code_tokens_split_identifiers_and_keep_them():
    assert code_tokens("parse_config_file(HTTPServerError)") == ["parse", "config", "file", "parse_config_file", "http", "server", "error", "httpservererror"]


def test_bm25_scores_every_text_for_every_query():
    texts = ["def parse_config_file(path): ...", "class NetworkClient: ...", "The cache keeps items."]
    scores = bm25_scores(texts, ["parse the config file", "network client", "nothing matches zzz"])
    assert scores.shape == (3, 3)
    assert scores[0].argmax() == 0 and scores[1].argmax() == 1
    assert not scores[2].any()  # no term in common: all zero


def test_fuse_keeps_the_dense_order_where_bm25_has_nothing_and_lets_it_break_ties():
    dense = np.array([[0.2, 0.9, 0.5], [0.5, 0.5, 0.1]], dtype=np.float32)
    lexical = np.array([[0.0, 0.0, 0.0], [0.0, 3.0, 0.0]], dtype=np.float32)
    fused = fuse(dense, lexical, alpha=0.8)
    assert list(np.argsort(-fused[0])) == list(np.argsort(-dense[0]))
    assert fused[1].argmax() == 1
    assert np.allclose(fuse(dense, lexical, alpha=1.0).argsort(), dense.argsort())


def test_top_k_orders_by_score():
    ranked = top_k(np.array([[0.1, 0.7, 0.3, 0.9]]), ["a", "b", "c", "d"], 3)
    assert [h["corpus_id"] for h in ranked[0]] == ["d", "b", "c"]


def test_corpus_embeddings_are_stored_and_reused(tiny_model, tmp_path, monkeypatch):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(tiny_model)
    calls = []
    real = model.encode_document
    model.encode_document = lambda texts, **kw: calls.append(len(texts)) or real(texts, **kw)
    first = corpus_embeddings(model, ["a b", "c d"], index_dir=tmp_path)
    second = corpus_embeddings(model, ["a b", "c d"], index_dir=tmp_path)
    assert calls == [2] and np.array_equal(first, second)  # the second came from the index, not the model
    corpus_embeddings(model, ["a b", "c e"], index_dir=tmp_path)  # another corpus: encoded anew
    assert calls == [2, 2] and len(list(tmp_path.glob("*.npy"))) == 2
    model.max_seq_length = max(2, model.max_seq_length // 2)  # another window (evaluation at 256, training at 128)
    corpus_embeddings(model, ["a b", "c d"], index_dir=tmp_path)  # the same weights and texts: encoded anew
    assert calls == [2, 2, 2] and len(list(tmp_path.glob("*.npy"))) == 3
    other = "fp32" if embed_precision("cpu") == "bf16" else "bf16"
    monkeypatch.setenv("REPOTUNE_EMBED_PRECISION", other)  # another precision: never served the other's vectors
    corpus_embeddings(model, ["a b", "c d"], index_dir=tmp_path)
    assert calls == [2, 2, 2, 2] and len(list(tmp_path.glob(f"*-{other}-*.npy"))) == 1


@pytest.fixture(scope="module")
def model_run(built_run, tmp_path_factory):
    """The fixture run with a 'model' that is the tiny base, saved with its search settings."""
    from support import run_with_base_as_model

    return run_with_base_as_model(built_run, tmp_path_factory.mktemp("search") / "run", {"context": True, "hybrid_alpha": 0.7})


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_search_modes(model_run, mode):
    result = search(model_run.model, ["load the cache settings", "register an item"], k=3, mode=mode)
    assert result["mode"] == mode and len(result["results"]) == 2
    assert all(len(r["hits"]) == 3 for r in result["results"])
    if mode == "bm25":
        assert result["results"][0]["hits"][0]["path"] in ("pkg/cache.py", "docs/cache.md")
    if mode != "bm25":  # one model, one corpus: one stored index, whichever dense mode asked first
        assert len(list((model_run.root / "index").glob("*.npy"))) == 1


def test_search_takes_a_run_directory_as_serve_gate_and_evaluate_do(model_run, capsys):
    assert main(["search", str(model_run.root), "load the cache settings", "-k", "2", "--json"]) == 0
    by_run = json.loads(capsys.readouterr().out)
    assert main(["search", str(model_run.model), "load the cache settings", "-k", "2", "--json"]) == 0
    assert by_run == json.loads(capsys.readouterr().out) and len(by_run["results"][0]["hits"]) == 2


def test_search_many_queries_as_json(model_run, tmp_path, capsys):
    queries = tmp_path / "q.txt"
    queries.write_text("load the cache settings\n\nregister an item with the manager\n")
    assert main(["search", str(model_run.model), "--queries", str(queries), "--json", "-k", "2", "--mode", "hybrid"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["query"] for r in out["results"]] == ["load the cache settings", "register an item with the manager"]
    assert all(set(h) >= {"path", "start_line", "end_line", "score", "text"} for r in out["results"] for h in r["hits"])


def test_search_without_a_query_or_with_a_bad_mode_says_what_to_give(model_run, capsys):
    assert main(["search", str(model_run.model)]) == 2
    assert "no query" in capsys.readouterr().err
    with pytest.raises(SearchError, match="choose one of"):
        search(model_run.model, ["x"], mode="fuzzy")


def test_search_over_a_plain_folder_goes_through_the_secret_scan(model_run, tmp_path):
    """`--corpus FOLDER` chunks the folder by the build's own per-file path: a token in it is redacted
    in every hit, and the folder's chunks are searched."""
    from support import write_files

    token = "ghp_" + "Q7vX2mLp9RzK4wYb8NcJdT5sH3gF6kE1aW0u"
    folder = write_files(tmp_path / "plain", {
        "deploy.md": f"# Deploying the cache\n\nClone with `git clone https://{token}@github.com/acme/cache.git` first.\n",
        "cache.py": '"""Load the cache settings from disk."""\n\n\ndef load_settings(path):\n    """Read the cache settings."""\n    return open(path).read()\n',
    })
    result = search(model_run.model, ["load the cache settings", "clone the repository"], corpus=folder, k=5, mode="bm25")
    texts = [hit["text"] for item in result["results"] for hit in item["hits"]]
    assert "chunks made from" in result["source"] and any("load_settings" in t for t in texts)
    assert any("<SECRET:" in t for t in texts) and not any(token[4:16] in t for t in texts)


def test_commit_subjects_come_from_commit_pairs_capped_distinct_in_order():
    pairs = [{"pair_type": "commit_definition", "positive_chunk_id": "a", "anchor": "Close the pager temp file"},
             {"pair_type": "docstring_code", "positive_chunk_id": "a", "anchor": "Page the output."},
             {"pair_type": "commit_definition", "positive_chunk_id": "a", "anchor": "Close the pager temp file"},
             {"pair_type": "commit_definition", "positive_chunk_id": "b", "anchor": "Land the bar on its end"},
             {"pair_type": "commit_definition", "positive_chunk_id": "a", "anchor": "Flush before paging"},
             {"pair_type": "commit_definition", "positive_chunk_id": "a", "anchor": "Past the cap"}]
    assert commit_subjects(pairs, 2) == {"a": ["Close the pager temp file", "Flush before paging"], "b": ["Land the bar on its end"]}
    assert commit_subjects(pairs, 0) == {}


def test_expansion_puts_training_commit_subjects_on_the_bm25_side_only(model_run, tmp_path):
    """history.expand: a chunk is found by its training commit's words (which its text lacks) in BM25 and
    hybrid search, never by a holdout commit's; the embedded text, and so the stored embeddings, stay as they were."""
    import shutil

    from support import add_commit_pairs

    from pipeline.dataset import load_corpus

    run = RunDir(tmp_path / "run")
    shutil.copytree(model_run.root, run.root)
    rows = list(load_corpus(run))
    network = next(r["id"] for r in rows if r["path"] == "pkg/network.py")
    storage = next(r["id"] for r in rows if r["path"] == "pkg/storage.py")
    add_commit_pairs(run, {"train": [("Quarantine zebra sockets on timeout", network)],
                           "holdout": [("Rotate walrus journals nightly", storage)]})
    def best(query: str, mode: str = "bm25") -> dict:
        return search(run.model, [query], k=1, mode=mode)["results"][0]["hits"][0]

    def hybrid_score(query: str, path: str) -> float:
        hits = search(run.model, [query], k=len(rows), mode="hybrid")["results"][0]["hits"]
        return max(h["score"] for h in hits if h["path"] == path)

    assert best("quarantine zebra")["score"] == 0  # off (the settings' default): the text alone
    before = hybrid_score("quarantine zebra", "pkg/network.py")
    settings = json.loads((run.model / "repotune.json").read_text())
    (run.model / "repotune.json").write_text(json.dumps({**settings, "expand": 3}))
    assert best("quarantine zebra")["path"] == "pkg/network.py" and best("quarantine zebra")["score"] > 0
    assert hybrid_score("quarantine zebra", "pkg/network.py") > before  # the hybrid's BM25 side reads it too
    assert best("rotate walrus journals")["score"] == 0  # a holdout commit's subject is a query, never an expansion
    index = Index(None, rows, True, None, subjects=run_subjects(run.root, 3))
    assert not any("zebra" in t for t in index.texts) and sum("zebra" in t for t in index.lexical_texts) == 1
