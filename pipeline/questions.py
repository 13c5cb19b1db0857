"""questions: a question set (the questions people type about a repository) scored over the run's
whole chunk corpus, for base, tuned, BM25 and hybrid search.

A question set is JSONL, one object a line::

    {"query": "where is the retry limit configured",
     "relevant": [{"path": "src/http.py", "symbol": "Client.send"}, {"path": "docs/a.md", "contains": "max_retries"}]}

A chunk is relevant when its path matches and its symbol equals ``symbol`` (or the chunk's last
dotted part does, so ``send`` finds ``Client.send``) or its text contains ``contains``. Metrics are
InformationRetrievalEvaluator's; the paired bootstrap interval says whether tuned − base is more
than noise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import RepotuneError
from .split import file_of

K = 10
RANK_DEPTH = 100  # ranks past this are reported as null ("not found in the top 100")


class QuestionError(RepotuneError, ValueError):
    """The question set cannot be used; the message names the line and what to fix."""


@dataclass(frozen=True)
class Question:
    query: str
    relevant: tuple[dict, ...]
    line: int


def load_questions(path: str | Path) -> list[Question]:
    path = Path(path)
    if not path.is_file():
        raise QuestionError(f"question set {path} does not exist: set evaluate.questions to a JSONL file "
                            '(one {"query": ..., "relevant": [...]} a line), or null')
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            raise QuestionError(f"{path}:{n}: not JSON ({err.msg})") from err
        relevant = item.get("relevant") if isinstance(item, dict) else None
        if not isinstance(item, dict) or not str(item.get("query", "")).strip() or not relevant or not isinstance(relevant, list):
            raise QuestionError(f'{path}:{n}: needs "query" (text) and "relevant" (a non-empty list)')
        for r in relevant:
            if not isinstance(r, dict) or "path" not in r or ("symbol" in r) == ("contains" in r):
                raise QuestionError(f'{path}:{n}: each relevant entry is {{"path", "symbol"}} or {{"path", "contains"}}, got {r!r}')
        out.append(Question(item["query"].strip(), tuple(relevant), n))
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


def bootstrap_interval(groups: list, weights: list[float] | None = None, n: int = 2000, seed: int = 0) -> list[float]:
    """95 % bootstrap interval of sum(weight x mean(group)), each group of per-question values resampled
    with replacement on its own: one group of paired differences (tuned - base), a train and a holdout
    group weighted +1 and -1 (the gap tuning added), or one group per question set, weighted equally."""
    weights = weights or [1.0] * len(groups)
    rng = np.random.default_rng(seed)
    stat = sum(w * np.asarray(g, dtype=float)[rng.integers(0, len(g), size=(n, len(g)))].mean(axis=1) for w, g in zip(weights, groups))
    return [round(float(np.percentile(stat, 2.5)), 4), round(float(np.percentile(stat, 97.5)), 4)]


def paired_bootstrap(a: list[float], b: list[float], n: int = 2000, seed: int = 0) -> list[float]:
    """95 % interval of mean(b - a) over questions resampled with replacement (paired: same questions)."""
    return bootstrap_interval([np.asarray(b) - np.asarray(a)], n=n, seed=seed)


def score_questions(questions: list[Question], rows: list[dict], scores: dict[str, np.ndarray], source: str,
                    top: int = 3, seed: int = 0) -> dict:
    """Metrics per system (``scores``: name -> [questions, corpus] array), per-question ranks, the top
    hits of base and tuned, and the paired bootstrap interval of tuned − base nDCG@10."""
    from .evaluate import RetrievalSet, ir_metrics, per_query_ndcg
    from .search import top_k

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


__all__ = ["Question", "QuestionError", "load_questions", "score_questions", "paired_bootstrap", "bootstrap_interval"]
