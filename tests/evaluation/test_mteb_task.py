"""pipeline.evaluation.mteb_task: the holdout as an mteb retrieval task, run offline, results kept per model in our folder."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pytest

from pipeline.evaluation.mteb_task import HEADLINE, holdout_task, public_tasks, result_file, run_mteb

CORPUS = {
    "d1": "def load_parser(path, retries=3):\n    \"\"\"Load the parser configuration from a file on disk.\"\"\"",
    "d2": "class CacheManager:\n    \"\"\"Keep track of every cache object the application creates.\"\"\"",
    "d3": "def open_socket(host, port):\n    \"\"\"Open a network connection to the given host.\"\"\"",
    "d4": "## Managing storage items\n\nCreate a StorageManager and register each item with add_item().",
    "d5": "def schedule(job, when):\n    \"\"\"Run a job at a given time on the scheduler queue.\"\"\"",
    "d6": "# Install\n\nRun pip install on the folder to get going quickly.",
    "d7": "def tokenize(text):\n    \"\"\"Split text into tokens for the tokenizer module.\"\"\"",
    "d8": "raise ValueError(\"item must not be None\")  # validate before storing",
}
QUERIES = {
    "q1": "read the parser settings from disk",
    "q2": "object that tracks cached items",
    "q3": "how do I install the project",
    "q4": "split a string into tokens",
}
RELEVANT = {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d6": 1}, "q4": {"d7": 1}}

# where mteb would put results if it fell back to its own cache (seen: /results/..., ~/.cache/mteb/results/...)
FOREIGN = [Path("/results"), Path.home() / ".cache" / "mteb" / "results", Path.cwd() / "results"]


def _foreign_results() -> set[Path]:
    return {p for root in FOREIGN if root.is_dir() for p in root.rglob("RepotuneHoldoutRetrieval*.json")}


@pytest.fixture(scope="module")
def models(tiny_model, tmp_path_factory):
    """The tiny model, and a copy with other weights (re-drawn with another seed) saved under another name."""
    import torch
    from sentence_transformers import SentenceTransformer

    base = SentenceTransformer(tiny_model, device="cpu")
    other = SentenceTransformer(tiny_model, device="cpu")
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in other.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.5)
    other_path = tmp_path_factory.mktemp("other") / "model"
    other.save(str(other_path))
    return base, SentenceTransformer(str(other_path), device="cpu")


def test_holdout_task_is_a_proper_retrieval_task():
    from mteb.abstasks.retrieval import AbsTaskRetrieval

    task = holdout_task(QUERIES, CORPUS, RELEVANT)
    assert isinstance(task, AbsTaskRetrieval)
    assert task.metadata.name == "RepotuneHoldoutRetrieval" and task.metadata.type == "Retrieval"
    assert task.metadata.main_score == "ndcg_at_10" and task.eval_splits == ["test"]
    task.load_data()
    split = task.dataset["default"]["test"]
    assert sorted(split["queries"]["id"]) == sorted(QUERIES) and sorted(split["corpus"]["id"]) == sorted(CORPUS)
    assert split["relevant_docs"] == RELEVANT
    # the dataset revision pins the content
    assert holdout_task(QUERIES, CORPUS, RELEVANT).metadata.revision == task.metadata.revision
    assert holdout_task(QUERIES, {**CORPUS, "d9": "x"}, RELEVANT).metadata.revision != task.metadata.revision
    assert holdout_task(QUERIES, CORPUS, RELEVANT, name="Other").metadata.name == "Other"


@pytest.mark.parametrize("queries,corpus,relevant", [
    ({}, CORPUS, {}),
    (QUERIES, CORPUS, {"q9": {"d1": 1}}),
    (QUERIES, CORPUS, {"q1": {"d99": 1}}),
    (QUERIES, CORPUS, {"q1": {"d1": 0}}),
])
def test_holdout_task_rejects_bad_input(queries, corpus, relevant):
    with pytest.raises(ValueError):
        holdout_task(queries, corpus, relevant)


def test_run_mteb_offline_each_model_its_own_result(models, tmp_path):
    base, other = models
    out = tmp_path / "mteb"
    before = _foreign_results()
    task = holdout_task(QUERIES, CORPUS, RELEVANT)

    s_base = run_mteb(base, "repotune/base", task, out)
    s_tuned = run_mteb(other, "repotune/tuned", task, out)  # same task object, same output_dir

    for scores in (s_base, s_tuned):
        assert set(HEADLINE) <= set(scores)
        assert all(isinstance(v, float) and math.isfinite(v) and 0.0 <= v <= 1.0 for v in scores.values())
        assert scores["main_score"] == scores["ndcg_at_10"]
    assert s_base != s_tuned  # the models rank differently: a cached copy would tie them

    f_base = result_file(out, "repotune/base", task.metadata.name)
    f_tuned = result_file(out, "repotune/tuned", task.metadata.name)
    assert f_base and f_tuned and f_base != f_tuned
    assert f_base.is_relative_to(out / "results" / "repotune__base")
    assert f_tuned.is_relative_to(out / "results" / "repotune__tuned")
    for f, scores, name in ((f_base, s_base, "repotune/base"), (f_tuned, s_tuned, "repotune/tuned")):
        saved = json.loads(f.read_text())
        assert saved["task_name"] == "RepotuneHoldoutRetrieval"
        assert saved["dataset_revision"] == task.metadata.revision
        assert saved["scores"]["test"][0]["ndcg_at_10"] == scores["ndcg_at_10"]
        assert json.loads((f.parent / "model_meta.json").read_text())["name"] == name

    # the same name on other weights is scored again, never answered from the file already there
    s_again = run_mteb(other, "repotune/base", task, out)
    assert s_again == s_tuned
    assert len(list((out / "results" / "repotune__base").glob("*/RepotuneHoldoutRetrieval.json"))) == 2

    assert _foreign_results() == before  # nothing landed in mteb's own cache, /results or ./results


def test_public_tasks_offline_skips(monkeypatch, repotune_log):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with repotune_log.at_level(logging.INFO, logger="repotune"):
        assert public_tasks(["NanoSciFactRetrieval"]) == []
    assert "skipped: Hub out of reach" in repotune_log.text
    assert public_tasks([]) == []


def test_public_tasks_load_failure_skips(monkeypatch, repotune_log):
    import mteb

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)

    def unreachable(*args, **kwargs):
        raise ConnectionError("no route to huggingface.co")

    monkeypatch.setattr(mteb, "get_tasks", unreachable)
    with repotune_log.at_level(logging.INFO, logger="repotune"):
        assert public_tasks(["NanoSciFactRetrieval"]) == []
    assert "skipped: Hub out of reach" in repotune_log.text and "ConnectionError" in repotune_log.text
