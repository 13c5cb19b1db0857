"""evaluate: what the tuned model gained (holdout retrieval) and what it may have lost (STS).

1. retrieval sets (holdout; a train sample of the same shape)  2. base, tuned and BM25 rankings
3. metrics with sentence-transformers' InformationRetrievalEvaluator, overall / by pair type / by
kind  4. STS-B and domain STS with EmbeddingSimilarityEvaluator  5. an MTEB task built from the
holdout  6. qualitative examples  7. metrics.json, report.md, plots, model-card results.

The gate reads ``metrics.json`` and never retrains.

One stage's scoring, every system on every retrieval yardstick (holdout, train sample, question set, history, MTEB),
whose pieces share the run's models and corpus texts; the metrics, STS, the report and the MTEB task are modules of
their own.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
from pathlib import Path

import numpy as np

from ..common import device_type, embed_precision, embed_text, hub_offline, row_text
from ..config import EvaluateConfig, Recipe
from ..console import progress
from ..dataset import load_corpus, load_pairs
from ..models import resolve_model
from ..retrieval.search import (
    bm25_scores,
    commit_subjects,
    corpus_embeddings,
    fuse,
    lexical_texts,
    query_embeddings,
    top_k,
)
from ..rundir import HELDOUT, RunDir, RunError, questions_path, write_json
from ..stage import track_time
from . import EvalError
from .metrics import RetrievalSet, bootstrap_interval, breakdown, ir_metrics, paired_bootstrap, per_query_ndcg
from .questions import load_questions, score_questions
from .sts import sts_metrics

log = logging.getLogger("repotune")

# --- 1. retrieval sets -------------------------------------------------------------------------------

def retrieval_set(pairs: list[dict], chunks: list[dict], used_chunk_ids: set[str], n_distractors: int | None = None, seed: int = 0,
                  context: bool = False) -> RetrievalSet:
    """Queries are anchors; the corpus is every positive plus the split's other chunks as distractors,
    each as ``common.embed_text`` makes it (with its path and symbol header when ``context``).

    Chunks that an anchor or positive came from are not distractors: they contain the anchor (a
    docstring inside its function) and would be right answers counted as wrong.
    """
    rs = RetrievalSet()
    where = {c["id"]: c for c in chunks}
    by_anchor: dict[str, str] = {}
    for p in pairs:
        cid = f"{p['positive_chunk_id']}#{hashlib.sha1(p['positive'].encode()).hexdigest()[:8]}"
        chunk = where.get(p["positive_chunk_id"], {})
        rs.corpus[cid] = embed_text(p["positive"], p["path"], chunk.get("symbol", ""), context)
        rs.corpus_meta[cid] = {"path": p["path"], "start_line": chunk.get("start_line", 0), "end_line": chunk.get("end_line", 0)}
        qid = by_anchor.setdefault(p["anchor"], f"q{len(by_anchor)}")
        rs.queries[qid] = p["anchor"]
        rs.relevant.setdefault(qid, set()).add(cid)
        rs.query_meta.setdefault(qid, {"pair_type": p["pair_type"], "kind": p["kind"]})
    distractors = [c for c in chunks if c["id"] not in used_chunk_ids]
    if n_distractors is not None and len(distractors) > n_distractors:
        distractors = random.Random(seed).sample(distractors, n_distractors)
    for c in distractors:
        rs.corpus[c["id"]] = row_text(c, context)
        rs.corpus_meta[c["id"]] = {"path": c["path"], "start_line": c["start_line"], "end_line": c["end_line"]}
    return rs


# --- 2. rankings (pipeline/retrieval/search.py does the scoring) -------------------------------------------

class TextMemo:
    """One model's document embeddings in an evaluation, each text embedded once: the whole corpus first (from the run's
    index/ where training's hard-negative mining or an earlier evaluation left it), then only the texts a retrieval set
    adds (a pair's positive as cut from its chunk). The holdout and train-sample sets' distractors are corpus chunks,
    which were embedded again for each set (this repository, 2026-12-07: 138 s of a 400 s evaluation)."""

    def __init__(self, model, batch_size: int = 32):
        self.model, self.batch_size, self.vectors = model, batch_size, {}

    def corpus(self, texts: list[str], index_dir: Path | None) -> None:
        self.vectors.update(zip(texts, corpus_embeddings(self.model, texts, self.batch_size, index_dir)))

    def documents(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        if missing:
            self.corpus(missing, None)
        return np.stack([self.vectors[t] for t in texts])


def system_scores(texts: list[str], queries: list[str], memos: dict[str, TextMemo], alpha: float,
                  lexical: list[str] | None = None) -> dict:
    """Scores [queries, texts] of each model (dense), of BM25 (over ``lexical``, the texts with their
    chunk expansion, when given), and of the hybrid (the last model fused with BM25)."""
    scores = {name: query_embeddings(m.model, queries, m.batch_size) @ m.documents(texts).T for name, m in memos.items()}
    scores["bm25"] = bm25_scores(lexical or texts, queries)
    scores["hybrid"] = fuse(scores[list(memos)[-1]], scores["bm25"], alpha)
    return scores


def rankings(rs: RetrievalSet, memos: dict[str, TextMemo], k: int, alpha: float) -> dict[str, list[list[dict]]]:
    """Top ``k`` of each system of ``system_scores`` on a retrieval set."""
    scores = system_scores(list(rs.corpus.values()), list(rs.queries.values()), memos, alpha)
    return {name: top_k(s, list(rs.corpus), k) for name, s in scores.items()}


# --- 3. metrics --------------------------------------------------------------------------------------

# --- 6. examples ------------------------------------------------------------------------------------

def examples(rs: RetrievalSet, rankings: dict[str, list[list[dict]]], n: int, seed: int = 0) -> list[dict]:
    order = list(rs.queries)
    picked = sorted(random.Random(seed).sample(range(len(order)), min(n, len(order))))
    out = []
    for i in picked:
        q = order[i]
        item = {"query": rs.queries[q], "pair_type": rs.query_meta[q]["pair_type"]}
        for name in ("base", "tuned"):
            item[name] = [{**rs.corpus_meta[h["corpus_id"]], "score": round(h["score"], 4), "relevant": h["corpus_id"] in rs.relevant[q]}
                          for h in rankings[name][i][:3]]
        out.append(item)
    return out


# --- the stage ---------------------------------------------------------------------------------------

def evaluate(run_dir: str | Path, recipe: Recipe | None = None) -> dict:
    """Evaluate base, tuned and BM25 on the run; write metrics.json, report.md, plots; return metrics."""
    run = RunDir(run_dir)
    recipe = recipe or run.read_recipe()
    config: EvaluateConfig = recipe.evaluate
    if not (run.model / "modules.json").is_file():
        raise RunError(f"no trained model in {run.model}: run `repotune train {run.root}` first")
    if (stale := run.provenance_problem(measured=False)) is not None:
        raise RunError(stale)
    manifest = run.read_manifest()
    if config.questions:  # a missing or malformed set is said now, not after the models embedded the corpus
        load_questions(questions_path(config.questions, manifest))
    pairs = load_pairs(run)
    corpus = load_corpus(run)
    seed, context = recipe.split.seed, recipe.chunk.context

    # 1. retrieval sets: the holdout, and disjoint train samples of its size and corpus shape
    try:
        holdout, train_sets, split_chunks = retrieval_sets(pairs, corpus, config, context, seed)
    except EvalError as err:  # the counts that made the holdout small: its real cause
        raise EvalError(f"{err} ({run.drops('pairs', 'split')})") from None

    # 2. rankings: base and tuned dense, BM25, and the hybrid of tuned and BM25
    models = load_models(run, recipe)
    bar = progress(total=6 + bool(config.questions) + bool(config.mteb), desc="evaluate", unit="part")
    seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def part(name: str):  # one part of the bar, its seconds in the manifest's timings
        with track_time(seconds, name):
            yield
        bar.update()

    # the whole corpus as each model embeds it, once (the run's index/ keeps it): every yardstick below reads it
    # (history.expand: BM25 also reads each chunk's training commit subjects, search.commit_subjects)
    texts = CorpusTexts(list(corpus), context, commit_subjects(pairs["train"], recipe.history.expand))
    memos = {name: TextMemo(m, config.batch_size) for name, m in models.items()}
    with part("corpus"):
        for memo in memos.values():
            memo.corpus(texts.texts, run.root / "index")
    k = 10
    with part("holdout"):
        ranks = rankings(holdout, memos, k, config.hybrid_alpha)
    with part("train_sample"):
        train_ranks = [rankings(rs, memos, k, config.hybrid_alpha) for rs in train_sets]

    # 3. metrics: holdout and train samples, by type and kind, and the gap tuning added
    metrics: dict = holdout_metrics(holdout, train_sets, ranks, train_ranks, list(models), seed) | {
        "context": context, "embed_precision": embed_precision(device_type(models["tuned"]))}

    # 3b. the question set: the questions people type, over the run's whole chunk corpus
    if config.questions:
        with part("questions"):
            metrics["questions"] = question_metrics(run, manifest, texts, memos, config, seed)
    # 3c. the history yardstick: the newest commits' subjects, scored as the question set is (history.py)
    with part("history"):
        metrics["history"] = history_metrics(run, texts, memos, config, seed)

    # 4. STS: general (STS-B) and domain (structure-graded holdout chunk pairs)
    with part("sts"):
        metrics |= sts_metrics(models, split_chunks["holdout"], config, seed)

    # 5. MTEB: the holdout as an mteb retrieval task; results travel with the model
    if config.mteb:
        with part("mteb"):
            metrics["mteb"] = run_mteb_tasks(run, holdout, models, config)

    # 6. examples, 7. outputs
    metrics["examples"] = examples(holdout, ranks, config.examples, seed)
    metrics["final_train_loss"] = manifest.get("train", {}).get("final_train_loss")
    metrics["model_hash"], metrics["dataset_hash"] = run.model_hash(), manifest.get("dataset_hash")  # what was measured
    write_json(run.metrics, metrics)
    from .report import write_report

    with part("report"):
        write_report(run, metrics, manifest)
    bar.close()
    run.update_manifest(timings={"evaluate": {name: round(value, 1) for name, value in seconds.items()}})
    return metrics


def load_models(run: RunDir, recipe: Recipe) -> dict:
    """The base and the tuned model, each at the recipe's token window."""
    from sentence_transformers import SentenceTransformer

    base = SentenceTransformer(resolve_model(recipe.train.base_model), local_files_only=hub_offline())
    tuned = SentenceTransformer(str(run.model), local_files_only=True)
    for m in (base, tuned):
        m.max_seq_length = recipe.train.max_seq_length
    return {"base": base, "tuned": tuned}


def retrieval_sets(pairs, corpus, config: EvaluateConfig, context: bool, seed: int):
    """The holdout's retrieval set; up to ``evaluate.train_draws`` disjoint train samples, each of the
    holdout's size with a corpus of the holdout's shape (its positives and as many distractors); and the
    corpus chunks by split. Too few holdout queries to measure: EvalError.

    One draw of a few dozen train pairs moved the gap tuning added by ±0.03 from one tree to the next
    (this repository: 0.112 to 0.166 on the same holdout), so the train side is the mean of several.
    """
    holdout_pairs = list(pairs["holdout"])
    if len({p["anchor"] for p in holdout_pairs}) < config.min_queries:
        raise EvalError(f"the holdout has {len(holdout_pairs)} pairs, fewer than evaluate.min_queries={config.min_queries} "
                        "queries: too small to measure. Raise split.holdout_fraction (e.g. --set split.holdout_fraction=0.3), "
                        "keep every pair (`pairs.balance: upsample`) or point repotune at a repository with more docstrings "
                        "and documentation")
    split_chunks = {s: [c for c in corpus if c["split"] == s] for s in ("train", "holdout")}
    train_pairs = list(pairs["train"])
    used = {i for p in train_pairs + holdout_pairs for i in (p["anchor_chunk_id"], p["positive_chunk_id"])}
    holdout = retrieval_set(holdout_pairs, split_chunks["holdout"], used, context=context)
    n_sample = min(config.train_sample or len(holdout_pairs), len(train_pairs))
    shuffled = random.Random(seed).sample(train_pairs, len(train_pairs))
    draws = max(1, min(config.train_draws, len(train_pairs) // max(n_sample, 1)))
    n_distract = len(holdout.corpus) - len({c for r in holdout.relevant.values() for c in r})
    train_sets = [retrieval_set(shuffled[d * n_sample:(d + 1) * n_sample], split_chunks["train"], used,
                                n_distractors=n_distract, seed=seed + d, context=context) for d in range(draws)]
    return holdout, train_sets, split_chunks


def holdout_metrics(holdout, train_sets: list, ranks: dict, train_ranks: list[dict], names: list[str], seed: int) -> dict:
    """Holdout and train-sample metrics per model (the train side the mean over its draws), the holdout
    by pair type and kind, the overfitting gaps (tuned's, base's, and what tuning added, with its interval
    and each draw's) and tuned - base's interval on the holdout."""
    per_draw = [{name: ir_metrics(rs, r[name]) for name in names} for rs, r in zip(train_sets, train_ranks)]
    metrics: dict = {
        "holdout": {name: ir_metrics(holdout, r) for name, r in ranks.items()},
        "holdout_size": {"queries": len(holdout.queries), "corpus": len(holdout.corpus)},
        "holdout_by_type": breakdown(holdout, ranks, "pair_type"),
        "holdout_by_kind": breakdown(holdout, ranks, "kind"),
        "train_sample": {name: {m: float(np.mean([d[name][m] for d in per_draw])) for m in per_draw[0][name]}
                         for name in names},
        "train_sample_size": {"queries": sum(len(rs.queries) for rs in train_sets), "draws": len(train_sets),
                              "corpus": len(train_sets[0].corpus)},
    }
    metrics["overfit_gap"] = metrics["train_sample"]["tuned"]["ndcg@10"] - metrics["holdout"]["tuned"]["ndcg@10"]
    metrics["base_gap"] = metrics["train_sample"]["base"]["ndcg@10"] - metrics["holdout"]["base"]["ndcg@10"]
    metrics["added_gap"] = round(metrics["overfit_gap"] - metrics["base_gap"], 4)
    holdout_added = metrics["holdout"]["tuned"]["ndcg@10"] - metrics["holdout"]["base"]["ndcg@10"]
    metrics["added_gap_by_draw"] = [round(d["tuned"]["ndcg@10"] - d["base"]["ndcg@10"] - holdout_added, 4) for d in per_draw]
    per_query = {"holdout": {name: per_query_ndcg(holdout, ranks[name]) for name in names},
                 "train": {name: [v for rs, r in zip(train_sets, train_ranks) for v in per_query_ndcg(rs, r[name])]
                           for name in names}}
    metrics["added_gap_ci"] = added_gap_interval(per_query["train"], per_query["holdout"], seed)
    metrics["holdout_delta_ci"] = paired_bootstrap(per_query["holdout"]["base"], per_query["holdout"]["tuned"], seed=seed)
    return metrics


def added_gap_interval(train: dict[str, list[float]], holdout: dict[str, list[float]], seed: int) -> list[float]:
    """95 % bootstrap interval of the gap tuning added: mean(tuned - base) on the train sample minus the
    same on the holdout (per-query nDCG@10 by model), each set of queries resampled on its own."""
    diffs = [np.asarray(s["tuned"]) - np.asarray(s["base"]) for s in (train, holdout)]
    return bootstrap_interval(diffs, weights=[1.0, -1.0], seed=seed)


class CorpusTexts:
    """The run's whole corpus as its systems read it: the rows, their embedded texts (``row_text``) and
    what BM25 indexes (``lexical_texts``: the same, with the chunk expansion when it is on)."""

    def __init__(self, rows: list[dict], context: bool, subjects: dict[str, list[str]]):
        self.rows, self.texts, self.lexical = rows, [row_text(r, context) for r in rows], lexical_texts(rows, context, subjects)
        self.expanded = sum(1 for r in rows if r["id"] in subjects)


def corpus_metrics(questions: list, source: str, texts: CorpusTexts, memos: dict[str, TextMemo], config: EvaluateConfig,
                   seed: int) -> dict:
    """``questions.Question``s scored by base, tuned, BM25 and hybrid over every chunk of the run (the corpus
    embeddings each ``TextMemo`` holds): the question set's path, and the history yardstick's."""
    scores = system_scores(texts.texts, [q.query for q in questions], memos, config.hybrid_alpha, texts.lexical)
    return score_questions(questions, texts.rows, scores, source, seed=seed) | {"expanded_chunks": texts.expanded}


def question_metrics(run: RunDir, manifest: dict, texts: CorpusTexts, memos: dict[str, TextMemo], config: EvaluateConfig,
                     seed: int) -> dict:
    """``questions`` in metrics.json: base, tuned, BM25 and hybrid over every chunk of the run."""
    path = questions_path(config.questions, manifest)
    return corpus_metrics(load_questions(path), str(path), texts, memos, config, seed)


def history_metrics(run: RunDir, texts: CorpusTexts, memos: dict[str, TextMemo], config: EvaluateConfig, seed: int) -> dict:
    """``history`` in metrics.json: the held-out (newest) commits' subjects as queries over every chunk of
    the run, each relevant to the definitions it touched (RUN/history/heldout.jsonl, written by the build:
    no git here), with the question set's keys; ``{"n": 0, "skipped": why}`` when the run has none."""
    from .questions import heldout_questions

    questions, why = heldout_questions(run.root, texts.rows)
    if not questions:
        return {"n": 0, "skipped": why}
    return corpus_metrics(questions, str(run.root / HELDOUT), texts, memos, config, seed)


def run_mteb_tasks(run: RunDir, holdout: RetrievalSet, models: dict, config: EvaluateConfig) -> dict:
    from .mteb_task import holdout_task, public_tasks, run_mteb

    out = {}
    relevant = {q: {c: 1 for c in cs} for q, cs in holdout.relevant.items()}
    task = holdout_task(holdout.queries, holdout.corpus, relevant)
    for name, model in models.items():
        out[name] = run_mteb(model, f"repotune/{name}", task, run.model / "mteb")
    public = public_tasks(config.mteb_public_tasks)
    if config.mteb_public_tasks and not public:
        out["public"] = {"skipped": "Hub out of reach"}
    for t in public:
        out.setdefault("public", {})[t.metadata.name] = {name: run_mteb(m, f"repotune/{name}", t, run.model / "mteb") for name, m in models.items()}
    return out
