"""drafts: candidate questions from the run's chunks (`repotune questions draft`), counted only once kept."""

from __future__ import annotations

import json
import shutil

import pytest

from pipeline.evaluation.drafts import DRAFT_SOURCES, draft_questions, heading_drafts, mention_drafts
from pipeline.evaluation.questions import QuestionError, load_questions, matches, relevant_ids
from pipeline.rundir import RunDir


@pytest.fixture
def run(built_run, tmp_path) -> RunDir:
    shutil.copytree(built_run, tmp_path / "run")
    return RunDir(tmp_path / "run")


def _rows(run):
    from pipeline.dataset import load_corpus

    return list(load_corpus(run))


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_heading_drafts_are_questions_pointing_at_their_section():
    """Headings asked as questions become drafts; titles, single words and bare topic headings ("Quick start",
    "What this changes", "Installing with pip") are not questions and are left out."""
    rows = [
        {"id": "t", "path": "docs/a.md", "kind": "docs", "symbol": "The a guide", "text": "# The a guide\n\nAbout a."},
        {"id": "s1", "path": "docs/a.md", "kind": "docs", "symbol": "The a guide > How do I install with `pip`?",
         "text": "## How do I install with `pip`?\n\npip install a"},
        {"id": "s2", "path": "docs/a.md", "kind": "docs", "symbol": "The a guide > How do I install with `pip`?", "text": "more of the long section"},
        {"id": "u", "path": "docs/a.md", "kind": "docs", "symbol": "The a guide > Usage", "text": "## Usage\n\nrun it"},
        {"id": "i", "path": "docs/a.md", "kind": "docs", "symbol": "The a guide > Installing with pip", "text": "## Installing with pip"},
        {"id": "q", "path": "docs/a.md", "kind": "docs", "symbol": "The a guide > Quick start", "text": "## Quick start"},
        {"id": "w", "path": "docs/a.md", "kind": "docs", "symbol": "The a guide > What this changes", "text": "## What this changes"},
        {"id": "n", "path": "nb/x.ipynb#markdown", "kind": "docs", "symbol": "Notebook > 3. Why a Hugging Face token", "text": "## 3. Why a Hugging Face token"},
        {"id": "p", "path": "card.md", "kind": "docs", "symbol": "{{ pretty_name }} > How is it scanned?", "text": "## How is it scanned?"},
        {"id": "c", "path": "a.py", "kind": "code", "symbol": "install", "text": "def install(): ..."},
    ]
    drafts = list(heading_drafts(RunDir("unused"), rows))
    assert drafts == [{"query": "How do I install with pip?", "relevant": [{"path": "docs/a.md", "symbol": "The a guide > How do I install with `pip`?"}]},
                      {"query": "Why a Hugging Face token", "relevant": [{"path": "nb/x.ipynb", "symbol": "Notebook > 3. Why a Hugging Face token"}]}]
    assert {r["id"] for r in rows if matches(drafts[0]["relevant"][0], r)} == {"s1", "s2"}  # every piece of the section


def test_mention_drafts_spell_the_name_in_words_and_skip_ambiguous_and_generic_names():
    rows = [
        {"id": "d", "path": "README.md", "kind": "docs", "symbol": "P > Use",
         "text": "## Use\n\nCall `load_cache()` with a path to read the settings. Then `run()` it and call `add_item()` often.\n\n"
                 "```\nload_cache()\n```"},
        {"id": "f", "path": "pkg/cache.py", "kind": "code", "chunk_type": "function", "symbol": "load_cache", "text": "def load_cache(p): ..."},
        {"id": "r", "path": "pkg/cache.py", "kind": "code", "chunk_type": "function", "symbol": "run", "text": "def run(): ..."},
        {"id": "a1", "path": "pkg/a.py", "kind": "code", "chunk_type": "function", "symbol": "A.add_item", "text": "def add_item(self): ..."},
        {"id": "a2", "path": "pkg/b.py", "kind": "code", "chunk_type": "function", "symbol": "B.add_item", "text": "def add_item(self): ..."},
    ]
    drafts = list(mention_drafts(RunDir("unused"), rows))
    assert drafts == [{"query": "Call load cache with a path to read the settings.", "relevant": [{"path": "pkg/cache.py", "symbol": "load_cache"}]}]


def test_draft_writes_drafts_that_resolve_and_counts_none_of_them(run, capsys):
    from pipeline.cli import main

    assert main(["questions", "draft", str(run.root)]) == 0
    out = capsys.readouterr().out.strip()
    path = run.root / "questions.drafts.jsonl"
    drafts = _lines(path)
    assert len(out.splitlines()) == 1 and f"drafted {len(drafts)} candidate questions" in out and str(path) in out
    assert f"repotune serve {run.root}" in out
    assert "from headings" in out and "from mentions" in out and "from the history" in out and "historys" not in out
    sources = {d["source"] for d in drafts}
    assert sources == {"heading", "mention"} and all(d["draft"] is True for d in drafts)
    assert {"query": "How do I load cache settings?", "relevant": [{"path": "docs/cache.md", "symbol": "The cache guide > How do I load cache settings?"}],
            "draft": True, "source": "heading"} in drafts
    assert not any(d["query"] in ("The cache guide", "Fixture project", "Install") for d in drafts)  # titles, one word
    mention = next(d for d in drafts if d["query"].startswith("Call load cache"))
    assert mention["relevant"] == [{"path": "pkg/cache.py", "symbol": "load_cache"}]
    rows = _rows(run)
    for d in drafts:  # each draft resolves to chunks of the corpus, as evaluate would look them up
        found = [r for e in d["relevant"] for r in rows if matches(e, r)]
        assert found, d
    # nothing counts until kept: the run has no question set, and the drafts are refused as one
    assert not run.questions.exists()
    with pytest.raises(QuestionError, match="is a draft"):
        load_questions(path)
    kept = [{k: d[k] for k in ("query", "relevant")} for d in drafts]  # what keeping writes: the same lines, less the flags
    (run.root / "kept.jsonl").write_text("".join(json.dumps(k) + "\n" for k in kept))
    qs = load_questions(run.root / "kept.jsonl")
    assert len(relevant_ids(qs, rows, [r["id"] for r in rows], "kept.jsonl")) == len(drafts)


def test_draft_skips_the_questions_the_set_has_and_replaces_earlier_drafts(run):
    known = {"query": "how do I load CACHE settings?", "relevant": [{"path": "docs/cache.md", "contains": "load_cache"}]}
    run.questions.write_text(json.dumps(known) + "\n")
    first = draft_questions(run.root)
    assert first["skipped_known"] == 1 and "How do I load cache settings?" not in [d["query"] for d in _lines(run.root / "questions.drafts.jsonl")]
    assert first["n"] == sum(first["by_source"].values()) == len(_lines(run.root / "questions.drafts.jsonl"))
    again = draft_questions(run.root)
    assert again["n"] == first["n"] and len(_lines(run.root / "questions.drafts.jsonl")) == first["n"]  # replaced, not appended


def test_a_draft_source_is_one_more_function(run):
    def commit_drafts(run, rows):
        yield {"query": "why was the cache loader changed", "relevant": [{"path": "pkg/cache.py", "symbol": "load_cache"}]}
        yield {"query": "Why was the cache loader changed", "relevant": [{"path": "docs/cache.md", "symbol": "The cache guide"}]}

    r = draft_questions(run.root, sources=[*DRAFT_SOURCES, commit_drafts])
    drafts = _lines(run.root / "questions.drafts.jsonl")
    assert r["by_source"]["commit"] == 1
    assert drafts[-1] == {"query": "why was the cache loader changed", "draft": True, "source": "commit",
                          "relevant": [{"path": "pkg/cache.py", "symbol": "load_cache"}, {"path": "docs/cache.md", "symbol": "The cache guide"}]}


def test_draft_refuses_while_the_question_set_is_malformed(run):
    run.questions.write_text("{not json\n")
    with pytest.raises(QuestionError, match=r"questions.jsonl:1: not JSON.*fix the question set first"):
        draft_questions(run.root)
    assert not (run.root / "questions.drafts.jsonl").exists()
