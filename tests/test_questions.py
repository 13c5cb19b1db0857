"""questions: loading a question set, which chunks are relevant, scores and the paired bootstrap."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.questions import QuestionError, first_rank, load_questions, matches, paired_bootstrap, relevant_ids, score_questions

ROWS = [
    {"path": "pkg/http.py", "symbol": "Client.send", "text": "def send(self, req):\n    retries = self.max_retries", "start_line": 1},
    {"path": "pkg/http.py", "symbol": "Client", "text": "class Client:\n    max_retries = 3", "start_line": 10},
    {"path": "docs/guide.md", "symbol": "Guide > Retries", "text": "Set max_retries in the config file.", "start_line": 1},
    {"path": "nb/demo.ipynb#python", "symbol": "", "text": "client.send(request)", "start_line": 1},
]


def write(tmp_path, lines) -> str:
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return str(path)


def test_load_questions_reads_jsonl_and_skips_blank_lines(tmp_path):
    qs = load_questions(write(tmp_path, [{"query": " where are retries set ", "relevant": [{"path": "pkg/http.py", "symbol": "send"}]}, ""]))
    assert len(qs) == 1 and qs[0].query == "where are retries set" and qs[0].line == 1


@pytest.mark.parametrize("line, message", [
    ("{not json", r"q.jsonl:1: not JSON"),
    ({"query": "x"}, r'needs "query" \(text\) and "relevant"'),
    ({"query": "x", "relevant": [{"path": "a.py"}]}, r'"symbol"\} or \{"path", "contains"\}'),
    ({"query": "x", "relevant": [{"path": "a.py", "symbol": "f", "contains": "g"}]}, r'"symbol"\} or'),
])
def test_bad_question_sets_name_the_line(tmp_path, line, message):
    with pytest.raises(QuestionError, match=message):
        load_questions(write(tmp_path, [line]))


def test_missing_or_empty_question_set(tmp_path):
    with pytest.raises(QuestionError, match="does not exist"):
        load_questions(tmp_path / "nope.jsonl")
    with pytest.raises(QuestionError, match="is empty"):
        load_questions(write(tmp_path, [""]))


def test_matches_by_symbol_last_part_by_contains_and_by_notebook_file():
    assert matches({"path": "pkg/http.py", "symbol": "Client.send"}, ROWS[0])
    assert matches({"path": "pkg/http.py", "symbol": "send"}, ROWS[0])  # the last dotted part
    assert not matches({"path": "pkg/http.py", "symbol": "send"}, ROWS[1])
    assert not matches({"path": "pkg/other.py", "symbol": "send"}, ROWS[0])  # the path must match too
    assert matches({"path": "docs/guide.md", "contains": "max_retries in the config"}, ROWS[2])
    assert matches({"path": "nb/demo.ipynb", "contains": "client.send"}, ROWS[3])


def test_a_question_without_a_relevant_chunk_is_named(tmp_path):
    qs = load_questions(write(tmp_path, [
        {"query": "where are retries set", "relevant": [{"path": "pkg/http.py", "symbol": "send"}]},
        {"query": "the moon", "relevant": [{"path": "pkg/moon.py", "symbol": "orbit"}]}]))
    with pytest.raises(QuestionError, match=r"1 question\(s\) in set.jsonl .*line 2 'the moon'"):
        relevant_ids(qs, ROWS, [str(i) for i in range(len(ROWS))], "set.jsonl")


def test_first_rank():
    scores = np.array([0.1, 0.9, 0.5, 0.7])
    assert first_rank(scores, {2}) == 3 and first_rank(scores, {0, 3}) == 2 and first_rank(scores, {1}) == 1


def test_paired_bootstrap_interval():
    rng = np.random.default_rng(1)
    a = rng.random(200)
    lo, hi = paired_bootstrap(list(a), list(a + 0.1))
    assert lo == pytest.approx(0.1, abs=1e-6) and hi == pytest.approx(0.1, abs=1e-6)  # a constant gain has no spread
    b = a + rng.normal(0, 0.2, 200)
    lo, hi = paired_bootstrap(list(a), list(b))
    assert lo < float(np.mean(b - a)) < hi and hi - lo < 0.1


def test_score_questions_on_known_scores(tmp_path):
    qs = load_questions(write(tmp_path, [
        {"query": "where are retries set", "relevant": [{"path": "pkg/http.py", "symbol": "send"}]},
        {"query": "retry guide", "relevant": [{"path": "docs/guide.md", "contains": "max_retries"}]}]))
    good = np.array([[0.9, 0.1, 0.2, 0.0], [0.1, 0.2, 0.8, 0.0]])  # right at rank 1 for both
    bad = np.array([[0.1, 0.9, 0.2, 0.0], [0.9, 0.2, 0.1, 0.0]])  # rank 3 for both
    out = score_questions(qs, ROWS, {"base": bad, "tuned": good, "bm25": bad, "hybrid": good}, "set.jsonl")
    assert out["n"] == 2 and out["corpus"] == 4
    assert out["tuned"]["ndcg@10"] == pytest.approx(1.0) and out["tuned"]["recall@1"] == 1.0
    assert out["base"]["recall@1"] == 0.0 and out["base"]["ndcg@10"] == pytest.approx(0.5)
    assert out["delta"] == pytest.approx(0.5) and out["delta_ci"] == [0.5, 0.5]
    assert [p["rank"]["base"] for p in out["per_question"]] == [3, 3]
    assert out["per_question"][0]["top"]["tuned"][0] == {"path": "pkg/http.py", "symbol": "Client.send", "start_line": 1, "relevant": True}
