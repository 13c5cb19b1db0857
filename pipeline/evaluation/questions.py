"""questions: a question set (the questions people type about a repository) scored over the run's
whole chunk corpus, for base, tuned, BM25 and hybrid search.

A question set is JSONL, one object a line::

    {"query": "where is the retry limit configured",
     "relevant": [{"path": "src/http.py", "symbol": "Client.send"}, {"path": "docs/a.md", "contains": "max_retries"}]}

A chunk is relevant when its path matches and its symbol equals ``symbol`` (or the chunk's last
dotted part does, so ``send`` finds ``Client.send``) or its text contains ``contains``. Metrics are
InformationRetrievalEvaluator's; the paired bootstrap interval says whether tuned − base is more
than noise. The labelling view of ``repotune serve`` writes sets through ``QuestionFile``, each tick
on a chunk saved as the entry ``entry_for`` finds for it.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..common import file_of
from ..errors import RepotuneError
from ..retrieval.search import top_k
from ..rundir import HELDOUT
from .metrics import RetrievalSet, bootstrap_interval, ir_metrics, paired_bootstrap, per_query_ndcg

K = 10
RANK_DEPTH = 100  # ranks past this are reported as null ("not found in the top 100")


class QuestionError(RepotuneError, ValueError):
    """The question set cannot be used; the message names the line and what to fix."""


@dataclass(frozen=True)
class Question:
    query: str
    relevant: tuple[dict, ...]
    line: int


def parse_line(line: str, where: str) -> dict | None:
    """One line of a question set, checked: None for a blank line, else the object; a QuestionError names ``where``."""
    if not line.strip():
        return None
    try:
        item = json.loads(line)
    except json.JSONDecodeError as err:
        raise QuestionError(f"{where}: not JSON ({err.msg})") from err
    relevant = item.get("relevant") if isinstance(item, dict) else None
    query = item.get("query") if isinstance(item, dict) else None
    if not isinstance(query, str) or not query.strip() or not relevant or not isinstance(relevant, list):
        raise QuestionError(f'{where}: needs "query" (text) and "relevant" (a non-empty list)')
    for r in relevant:
        if not isinstance(r, dict) or "path" not in r or ("symbol" in r) == ("contains" in r):
            raise QuestionError(f'{where}: each relevant entry is {{"path", "symbol"}} or {{"path", "contains"}}, got {r!r}')
    return item


def load_questions(path: str | Path) -> list[Question]:
    path = Path(path)
    if not path.is_file():
        raise QuestionError(f"question set {path} does not exist: set evaluate.questions to a JSONL file "
                            '(one {"query": ..., "relevant": [...]} a line), or null')
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        item = parse_line(line, f"{path}:{n}")
        if item is None:
            continue
        if item.get("draft"):  # a draft counts only once a person has kept it
            raise QuestionError(f"{path}:{n}: is a draft (`repotune questions draft`), not a question: keep or discard it "
                                "in `repotune serve RUN` (Label), which moves kept drafts into the question set")
        out.append(Question(item["query"].strip(), tuple(item["relevant"]), n))
    if not out:
        raise QuestionError(f"question set {path} is empty")
    return out


def matches(entry: dict, row: dict) -> bool:
    if entry["path"] not in (row["path"], file_of(row["path"])):
        return False
    if "symbol" in entry:
        symbol = row.get("symbol") or ""
        return entry["symbol"] in (symbol, symbol.rsplit(".", 1)[-1])
    return entry["contains"] in row["text"]


def unmatched(set_path: str, rows: list[dict]) -> tuple[list[str], int]:
    """Lines describing each entry of the set at ``set_path`` that matches no chunk of ``rows``, and how many
    questions have no match at all (which ``relevant_ids`` refuses): a set checked before it is spent."""
    by_file = rows_by_file(rows)
    problems, empty = [], 0
    for q in load_questions(set_path):
        hits = [len(matching(e, by_file)) for e in q.relevant]
        problems += [f"line {q.line}: no chunk for {e}" for e, n in zip(q.relevant, hits) if not n]
        if not any(hits):
            empty += 1
            problems.append(f"line {q.line}: NO relevant chunk at all: {q.query!r}")
    return problems, empty


def relevant_ids(questions: list[Question], rows: list[dict], ids: list[str], source: str) -> dict[str, set[str]]:
    """Question id -> relevant corpus ids; a question with no relevant chunk is an error naming it."""
    by_path: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        by_path.setdefault(file_of(row["path"]), []).append(i)
    out, missing = {}, []
    for q in questions:
        found = {ids[i] for e in q.relevant for i in by_path.get(e["path"], []) if matches(e, rows[i])}
        if not found:
            missing.append(f"line {q.line} {q.query!r}")
        out[f"q{q.line}"] = found
    if missing:
        raise QuestionError(f"{len(missing)} question(s) in {source} have no relevant chunk in the corpus (wrong path, "
                            f"symbol or text, or the file was dropped by cleaning): {'; '.join(missing[:5])}")
    return out


def first_rank(scores: np.ndarray, relevant: set[int]) -> int | None:
    """1-based rank of the best-ranked relevant chunk, or None beyond RANK_DEPTH."""
    best = max(scores[i] for i in relevant)
    rank = int((scores > best).sum()) + 1
    return rank if rank <= RANK_DEPTH else None


def score_questions(questions: list[Question], rows: list[dict], scores: dict[str, np.ndarray], source: str,
                    top: int = 3, seed: int = 0) -> dict:
    """Metrics per system (``scores``: name -> [questions, corpus] array), per-question ranks, the top
    hits of base and tuned, and the paired bootstrap interval of tuned − base nDCG@10."""
    ids = [f"c{i}" for i in range(len(rows))]
    rs = RetrievalSet(queries={f"q{q.line}": q.query for q in questions}, corpus=dict(zip(ids, (r["text"] for r in rows))),
                      relevant=relevant_ids(questions, rows, ids, source))
    qids = list(rs.queries)
    out: dict = {"n": len(questions), "source": str(source), "corpus": len(rows)}
    per_query: dict[str, list[float]] = {}
    ranked = {name: top_k(s, ids, K) for name, s in scores.items()}
    for name, r in ranked.items():
        out[name] = ir_metrics(rs, r)
        per_query[name] = per_query_ndcg(rs, r)
    if "base" in scores and "tuned" in scores:
        out["delta"] = round(out["tuned"]["ndcg@10"] - out["base"]["ndcg@10"], 4)
        out["delta_ci"] = paired_bootstrap(per_query["base"], per_query["tuned"], seed=seed)
    index = {cid: i for i, cid in enumerate(ids)}
    out["per_question"] = [
        {"query": q.query, "line": q.line,
         "ndcg@10": {name: round(per_query[name][n], 4) for name in scores},
         "rank": {name: first_rank(s[n], {index[c] for c in rs.relevant[qid]}) for name, s in scores.items()},
         "top": {name: [{"path": rows[index[h["corpus_id"]]]["path"], "symbol": rows[index[h["corpus_id"]]].get("symbol") or "",
                         "start_line": rows[index[h["corpus_id"]]]["start_line"], "relevant": h["corpus_id"] in rs.relevant[qid]}
                        for h in ranked[name][n][:top]]
                 for name in ("base", "tuned") if name in ranked}}
        for n, (q, qid) in enumerate(zip(questions, qids))]
    return out


# --- labelling: the entries a person's ticks are saved as, and the file the labelling view edits -------------

CONTAINS_CHARS = 80  # longest `contains` written: a line's start, distinctive enough and short enough to read
_MEANINGFUL = 12  # characters: lines at least this long are tried first (`)` or `else:` rarely survives an edit)


def rows_by_file(rows: Iterable[dict]) -> dict[str, list[dict]]:
    """Corpus rows grouped by ``file_of`` their path (a notebook's cells under the notebook), in order."""
    out: dict[str, list[dict]] = {}
    for row in rows:
        out.setdefault(file_of(row["path"]), []).append(row)
    return out


def matching(entry: dict, by_file: dict[str, list[dict]]) -> list[dict]:
    """The corpus rows ``entry`` resolves to (``by_file``: rows grouped by ``file_of`` their path)."""
    return [r for r in by_file.get(entry["path"], []) if matches(entry, r)]


def entry_for(row: dict, file_rows: list[dict]) -> dict:
    """The relevant entry a tick on ``row`` is saved as (``file_rows``: the corpus rows of its file).

    path + symbol when the chunk has a symbol that names no other definition of the file (pieces of one
    long definition share its symbol, and all count); else path + ``contains``, the chunk's first line
    (cut to CONTAINS_CHARS) that no other chunk of the file contains. Either way it ``matches`` ``row``.
    """
    path, symbol = file_of(row["path"]), row.get("symbol") or ""
    if symbol:
        entry = {"path": path, "symbol": symbol}
        if all(r.get("symbol") == symbol for r in file_rows if matches(entry, r)):  # not `load` beside `Cache.load`
            return entry
    lines = [line.strip()[:CONTAINS_CHARS].strip() for line in row["text"].splitlines() if line.strip()]
    if not lines:
        raise QuestionError(f"chunk {row.get('id', row['path'])} has no text to label it by")
    others = [r["text"] for r in file_rows if r.get("id") != row.get("id")]
    for line in sorted(lines, key=lambda line: len(line) < _MEANINGFUL):  # stable: long lines first, in order
        if not any(line in text for text in others):
            return {"path": path, "contains": line}
    # the chunk's every line is in another chunk too: the symbol, or the first line, and both chunks count
    return {"path": path, "symbol": symbol} if symbol else {"path": path, "contains": lines[0]}


def relabel(old: list[dict], ticked: list[dict], by_file: dict[str, list[dict]], kept_unmatched: list[dict] = ()) -> list[dict]:
    """A question's relevant entries after a person's ticks. An old entry stays as it was written (a
    hand-written ``contains`` is not rewritten) while every chunk it resolves to is ticked; each ticked
    chunk that no kept entry covers gets a new one (``entry_for``). ``kept_unmatched``: old entries that
    resolve to no chunk of this corpus, which the person chose to keep."""
    ticked_ids = {r["id"] for r in ticked}
    out: list[dict] = []
    covered: set[str] = set()
    for entry in old:
        ids = {r["id"] for r in matching(entry, by_file)}
        if ids and ids <= ticked_ids and entry not in out:
            out.append(entry)
            covered |= ids
    out += [e for e in kept_unmatched if e not in out]
    for row in ticked:
        if row["id"] in covered:
            continue
        entry = entry_for(row, by_file[file_of(row["path"])])
        if entry not in out:
            out.append(entry)
        covered |= {r["id"] for r in matching(entry, by_file)}
    return out


def line_digest(raw: str) -> str:
    """Names one line's content: a form that edits line N says which text it saw there."""
    return hashlib.sha1(raw.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class SetLine:
    number: int  # 1-based line of the file, as load_questions and metrics.json's per_question name it
    item: dict
    digest: str


class QuestionFile:
    """A question set (or its drafts) on disk as the labelling view edits it.

    Writes replace the file at once (a temp file beside it, renamed), keep every other line as it was,
    and are refused while any line is malformed: the file is then the person's to fix, not the view's.
    An edit or delete names its line by number and digest, so a file changed meanwhile is not clobbered.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def _raw(self) -> list[str]:
        return self.path.read_text(encoding="utf-8").splitlines() if self.path.is_file() else []

    def lines(self) -> list[SetLine]:
        """Every question of the file; a malformed line is a QuestionError that names it."""
        out = []
        for n, raw in enumerate(self._raw(), start=1):
            item = parse_line(raw, f"{self.path}:{n}")
            if item is not None:
                out.append(SetLine(n, item, line_digest(raw)))
        return out

    def get(self, number: int, digest: str) -> dict:
        raw = self._raw()
        self._check_line(raw, number, digest)
        return parse_line(raw[number - 1], f"{self.path}:{number}")

    def append(self, item: dict) -> int:
        raw = self.writable()
        raw.append(_dump(item))
        self._write(raw)
        return len(raw)

    def replace(self, number: int, digest: str, item: dict) -> None:
        raw = self.writable()
        self._check_line(raw, number, digest)
        raw[number - 1] = _dump(item)
        self._write(raw)

    def delete(self, number: int, digest: str) -> dict:
        """Remove line ``number``; returns what it held."""
        raw = self.writable()
        self._check_line(raw, number, digest)
        item = parse_line(raw.pop(number - 1), f"{self.path}:{number}")
        self._write(raw)
        return item

    def rewrite(self, items: list[dict]) -> None:
        """The whole file anew: for a file one command owns (the drafts `repotune questions draft` writes)."""
        self._write([_dump(item) for item in items])

    def writable(self) -> list[str]:
        """The file's lines, or a QuestionError when any is malformed: then no write may go ahead."""
        try:
            self.lines()
        except QuestionError as err:
            raise QuestionError(f"{err}. Nothing was written: {self.path} is rewritten only when every line reads, "
                                "so fix or remove that line by hand, then reload") from err
        return self._raw()

    def _check_line(self, raw: list[str], number: int, digest: str) -> None:
        if not (1 <= number <= len(raw)) or line_digest(raw[number - 1]) != digest:
            raise QuestionError(f"line {number} of {self.path} changed since the page showed it (another tab or an editor): "
                                "reload the page and try again")

    def _write(self, raw: list[str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write("".join(line + "\n" for line in raw))
            if self.path.exists():
                os.chmod(tmp, self.path.stat().st_mode & 0o7777)  # mkstemp's 0600 would hide a shared file
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


_LINE_BREAKS = {"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"}  # str.splitlines splits there; JSON leaves them raw


def _dump(item: dict) -> str:
    """One JSONL line, readable text (no \\u escapes) but never one that splitlines would cut in two."""
    text = json.dumps(item, ensure_ascii=False)
    for char, escape in _LINE_BREAKS.items():
        text = text.replace(char, escape)
    return text


def heldout_questions(run_root: Path, rows: list[dict]) -> tuple[list, str]:
    """(questions, why none): the held-out commits the history stage set aside (``mining.history``), as
    ``Question``, each relevant entry the exact entry of its definition's chunk in the corpus (``entry_for``: `load`
    does not also match `Cache.load`), so they score by the question set's own path (``score_questions``)."""
    path = run_root / HELDOUT
    if not path.is_file():
        return [], "the run was built without the history stage (no history/heldout.jsonl)"
    by_file: dict[str, list[dict]] = {}
    first: dict[tuple[str, str], dict] = {}
    for r in rows:
        by_file.setdefault(file_of(r["path"]), []).append(r)
        first.setdefault((r["path"], r.get("symbol") or ""), r)
    questions = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        item = json.loads(line)
        relevant = tuple(entry_for(first[key], by_file[file_of(key[0])]) for e in item["relevant"]
                         if (key := (e["path"], e["symbol"])) in first)
        if relevant:
            questions.append(Question(item["query"], relevant, n))
    return questions, "" if questions else "no held-out commits (stats/history.json says why)"


__all__ = ["Question", "QuestionError", "QuestionFile", "entry_for", "heldout_questions", "load_questions", "matches", "relabel",
           "score_questions", "paired_bootstrap", "bootstrap_interval"]
