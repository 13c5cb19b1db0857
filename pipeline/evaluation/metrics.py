"""metrics: retrieval scored as sentence-transformers' InformationRetrievalEvaluator scores it, per
query and overall, and the bootstrap intervals every comparison in repotune reports (the holdout,
question sets, the history yardstick, the benchmarks)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

KS = {"ndcg@k": [10], "mrr@k": [10], "recall@k": [1, 5, 10]}


@dataclass
class RetrievalSet:
    queries: dict[str, str] = field(default_factory=dict)
    corpus: dict[str, str] = field(default_factory=dict)
    relevant: dict[str, set[str]] = field(default_factory=dict)
    query_meta: dict[str, dict] = field(default_factory=dict)  # pair_type, kind
    corpus_meta: dict[str, dict] = field(default_factory=dict)  # path, start_line, end_line


def ir_metrics(rs: RetrievalSet, ranked: list[list[dict]], qids: list[str] | None = None) -> dict[str, float]:
    """nDCG@10, MRR@10, Recall@1/5/10 by InformationRetrievalEvaluator's own definitions."""
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    order = list(rs.queries)
    qids = qids or order
    evaluator = InformationRetrievalEvaluator(
        {q: rs.queries[q] for q in qids}, rs.corpus, {q: rs.relevant[q] for q in qids},
        mrr_at_k=KS["mrr@k"], ndcg_at_k=KS["ndcg@k"], accuracy_at_k=[1], precision_recall_at_k=KS["recall@k"], map_at_k=[10],
        write_csv=False,
    )
    position = {q: i for i, q in enumerate(order)}
    scores = evaluator.compute_metrics([ranked[position[q]] for q in evaluator.queries_ids])
    return {f"{name.split('@')[0]}@{k}": float(scores[name][k]) for name, ks in KS.items() for k in ks}


def breakdown(rs: RetrievalSet, rankings: dict[str, list[list[dict]]], key: str) -> dict:
    groups: dict[str, list[str]] = defaultdict(list)
    for q, meta in rs.query_meta.items():
        groups[meta[key]].append(q)
    return {g: {"n_queries": len(qs), **{name: ir_metrics(rs, r, qs) for name, r in rankings.items()}} for g, qs in sorted(groups.items())}


def per_query_ndcg(rs: RetrievalSet, ranked: list[list[dict]]) -> list[float]:
    return [ir_metrics(rs, ranked, [q])["ndcg@10"] for q in rs.queries]


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
