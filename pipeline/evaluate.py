"""evaluate: what the tuned model gained (holdout retrieval) and what it may have lost (STS).

1. retrieval sets (holdout; a train sample of the same shape)  2. base, tuned and BM25 rankings
3. metrics with sentence-transformers' InformationRetrievalEvaluator, overall / by pair type / by
kind  4. STS-B and domain STS with EmbeddingSimilarityEvaluator  5. an MTEB task built from the
holdout  6. qualitative examples  7. metrics.json, report.md, plots, model-card results.

The gate reads ``metrics.json`` and never retrains.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .config import EvaluateConfig, Recipe
from .dataset import load_corpus, load_pairs
from .models import resolve_model
from .rundir import RunDir, RunError, write_json
from .split import file_of

log = logging.getLogger("repotune")

PACKAGED_DATA = Path(__file__).parent / "data"
KS = {"ndcg@k": [10], "mrr@k": [10], "recall@k": [1, 5, 10]}


class EvalError(RuntimeError):
    """Evaluation cannot measure this run; the message says how to fix it."""


# --- 1. retrieval sets -------------------------------------------------------------------------------

@dataclass
class RetrievalSet:
    queries: dict[str, str] = field(default_factory=dict)
    corpus: dict[str, str] = field(default_factory=dict)
    relevant: dict[str, set[str]] = field(default_factory=dict)
    query_meta: dict[str, dict] = field(default_factory=dict)  # pair_type, kind
    corpus_meta: dict[str, dict] = field(default_factory=dict)  # path, start_line, end_line


def retrieval_set(pairs: list[dict], chunks: list[dict], used_chunk_ids: set[str], n_distractors: int | None = None, seed: int = 0) -> RetrievalSet:
    """Queries are anchors; the corpus is every positive plus the split's other chunks as distractors.

    Chunks that an anchor or positive came from are not distractors: they contain the anchor (a
    docstring inside its function) and would be right answers counted as wrong.
    """
    rs = RetrievalSet()
    where = {c["id"]: c for c in chunks}
    by_anchor: dict[str, str] = {}
    for p in pairs:
        cid = f"{p['positive_chunk_id']}#{hashlib.sha1(p['positive'].encode()).hexdigest()[:8]}"
        chunk = where.get(p["positive_chunk_id"], {})
        rs.corpus[cid] = p["positive"]
        rs.corpus_meta[cid] = {"path": p["path"], "start_line": chunk.get("start_line", 0), "end_line": chunk.get("end_line", 0)}
        qid = by_anchor.setdefault(p["anchor"], f"q{len(by_anchor)}")
        rs.queries[qid] = p["anchor"]
        rs.relevant.setdefault(qid, set()).add(cid)
        rs.query_meta.setdefault(qid, {"pair_type": p["pair_type"], "kind": p["kind"]})
    distractors = [c for c in chunks if c["id"] not in used_chunk_ids]
    if n_distractors is not None and len(distractors) > n_distractors:
        distractors = random.Random(seed).sample(distractors, n_distractors)
    for c in distractors:
        rs.corpus[c["id"]] = c["text"]
        rs.corpus_meta[c["id"]] = {"path": c["path"], "start_line": c["start_line"], "end_line": c["end_line"]}
    return rs


# --- 2. rankings ---------------------------------------------------------------------------------

_SPLIT_IDENT = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def code_tokens(text: str) -> list[str]:
    """BM25 tokens that know code: snake_case and CamelCase split into words, lowercased; the whole
    identifier is kept too, so an exact name still matches."""
    out = []
    for word in re.findall(r"[A-Za-z0-9_]+", text):
        parts = [p.lower() for piece in word.split("_") for p in _SPLIT_IDENT.findall(piece)]
        out += parts
        if len(parts) > 1:
            out.append(word.lower())
    return out


def rank_bm25(rs: RetrievalSet, k: int) -> list[list[dict]]:
    import bm25s

    ids = list(rs.corpus)
    retriever = bm25s.BM25()
    retriever.index([code_tokens(rs.corpus[i]) or ["<empty>"] for i in ids], show_progress=False)
    queries = [code_tokens(rs.queries[q]) or ["<empty>"] for q in rs.queries]
    docs, scores = retriever.retrieve(queries, k=min(k, len(ids)), show_progress=False)
    return [[{"corpus_id": ids[d], "score": float(s)} for d, s in zip(drow, srow)] for drow, srow in zip(docs, scores)]


def rank_model(model, rs: RetrievalSet, k: int, batch_size: int) -> list[list[dict]]:
    import torch

    ids = list(rs.corpus)
    q = model.encode(list(rs.queries.values()), batch_size=batch_size, convert_to_tensor=True, normalize_embeddings=True)
    c = model.encode([rs.corpus[i] for i in ids], batch_size=batch_size, convert_to_tensor=True, normalize_embeddings=True)
    top = torch.topk(q @ c.T, k=min(k, len(ids)), dim=1)
    return [[{"corpus_id": ids[j], "score": float(s)} for s, j in zip(srow.tolist(), jrow.tolist())]
            for srow, jrow in zip(top.values, top.indices)]


# --- 3. metrics --------------------------------------------------------------------------------------

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


# --- 4. STS -----------------------------------------------------------------------------------------

def load_sts(spec: str, fallback: str | None = None) -> tuple[list[str], list[str], list[float], str]:
    """(sentences1, sentences2, scores in [0, 1], source) from a Hub id, a TSV path, or packaged:NAME."""
    if spec.startswith("packaged:"):
        return _read_sts_tsv(PACKAGED_DATA / "stsb" / f"{spec.removeprefix('packaged:')}.tsv", spec)
    path = Path(spec).expanduser()
    if path.suffix in (".tsv", ".csv", ".txt") or path.exists():
        return _read_sts_tsv(path, spec)
    if os.environ.get("HF_HUB_OFFLINE") != "1":
        try:
            from datasets import load_dataset

            ds = load_dataset(spec, split="test")
            return list(ds["sentence1"]), list(ds["sentence2"]), [float(s) for s in ds["score"]], f"{spec} test"
        except Exception as err:  # the Hub is out of reach, or the id is wrong: say so, use the fallback
            log.warning("STS data %s could not be loaded (%s)", spec, err)
    if fallback:
        log.info("STS: using %s instead of %s (Hub out of reach)", fallback, spec)
        return load_sts(fallback)
    raise EvalError(f"cannot load STS data {spec!r} and no evaluate.sts_fallback is set: give a TSV path "
                    "with sentence1, sentence2, score columns, or packaged:stsb_test")


def _read_sts_tsv(path: Path, spec: str) -> tuple[list[str], list[str], list[float], str]:
    if not path.is_file():
        raise EvalError(f"STS file {path} does not exist: set evaluate.sts to a TSV path, a Hub id, or packaged:stsb_test")
    with open(path, newline="", encoding="utf-8") as f:
        # quoting off: STS-B sentences hold unbalanced double quotes (the test split shrinks to 1119 rows otherwise)
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = {"sentence1", "sentence2", "score"} - set(reader.fieldnames or [])
        if missing:
            raise EvalError(f"STS file {path} lacks column(s) {sorted(missing)} (found {reader.fieldnames}): "
                            "it needs tab-separated sentence1, sentence2, score (0-5)")
        rows = list(reader)
    return [r["sentence1"] for r in rows], [r["sentence2"] for r in rows], [float(r["score"]) / 5.0 for r in rows], f"{PurePosixPath(spec).name}"


def sts_spearman(model, s1: list[str], s2: list[str], scores: list[float], name: str, batch_size: int) -> float:
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator

    evaluator = EmbeddingSimilarityEvaluator(s1, s2, scores, main_similarity="cosine", name=name, batch_size=batch_size, write_csv=False)
    return float(evaluator(model)[f"{name}_spearman_cosine"])


def domain_sts_pairs(chunks: list[dict], n: int, seed: int = 0) -> tuple[list[str], list[str], list[float]]:
    """Pairs of holdout chunks graded by structure: same symbol/section 3 > same file 2 > same
    folder 1 > elsewhere 0, sampled evenly across grades where the corpus allows."""
    rng = random.Random(seed)
    if len(chunks) < 2:
        return [], [], []

    def grade(a: dict, b: dict) -> int:
        fa, fb = file_of(a["path"]), file_of(b["path"])
        if fa == fb:
            return 3 if a["symbol"] and a["symbol"] == b["symbol"] else 2
        return 1 if PurePosixPath(fa).parent == PurePosixPath(fb).parent else 0

    buckets: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for _ in range(n * 20):
        i, j = rng.sample(range(len(chunks)), 2)
        buckets[grade(chunks[i], chunks[j])].append((i, j))
    chosen = []
    for g in sorted(buckets):
        chosen += [(i, j, g) for i, j in dict.fromkeys(buckets[g])][: max(1, n // 4)]
    return [chunks[i]["text"] for i, _, _ in chosen], [chunks[j]["text"] for _, j, _ in chosen], [g / 3 for _, _, g in chosen]


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
    from sentence_transformers import SentenceTransformer

    run = RunDir(run_dir)
    recipe = recipe or run.read_recipe()
    config: EvaluateConfig = recipe.evaluate
    if not (run.model / "modules.json").is_file():
        raise RunError(f"no trained model in {run.model}: run `repotune train {run.root}` first")
    manifest = run.read_manifest()
    pairs = load_pairs(run)
    corpus = load_corpus(run)
    seed = recipe.split.seed

    # 1. retrieval sets: the holdout, and a train sample of the same size and corpus shape
    holdout_pairs = list(pairs["holdout"])
    if len({p["anchor"] for p in holdout_pairs}) < config.min_queries:
        raise EvalError(f"the holdout has {len(holdout_pairs)} pairs, fewer than evaluate.min_queries={config.min_queries} "
                        "queries: too small to measure. Raise split.holdout_fraction (e.g. --set split.holdout_fraction=0.3) "
                        "or point repotune at a repository with more docstrings and documentation")
    split_chunks = {s: [c for c in corpus if c["split"] == s] for s in ("train", "holdout")}
    used = {i for p in list(pairs["train"]) + holdout_pairs for i in (p["anchor_chunk_id"], p["positive_chunk_id"])}
    holdout = retrieval_set(holdout_pairs, split_chunks["holdout"], used)
    n_sample = config.train_sample or len(holdout_pairs)
    train_pairs = list(pairs["train"])
    sample = random.Random(seed).sample(train_pairs, min(n_sample, len(train_pairs)))
    n_distract = len(holdout.corpus) - len({c for r in holdout.relevant.values() for c in r})
    train_rs = retrieval_set(sample, split_chunks["train"], used, n_distractors=n_distract, seed=seed)

    # 2. rankings
    base = SentenceTransformer(resolve_model(recipe.train.base_model), local_files_only=os.environ.get("HF_HUB_OFFLINE") == "1")
    tuned = SentenceTransformer(str(run.model), local_files_only=True)
    for m in (base, tuned):
        m.max_seq_length = recipe.train.max_seq_length
    k = 10
    ranks = {"base": rank_model(base, holdout, k, config.batch_size), "tuned": rank_model(tuned, holdout, k, config.batch_size), "bm25": rank_bm25(holdout, k)}
    train_ranks = {"base": rank_model(base, train_rs, k, config.batch_size), "tuned": rank_model(tuned, train_rs, k, config.batch_size)}

    # 3. metrics
    metrics: dict = {
        "holdout": {name: ir_metrics(holdout, r) for name, r in ranks.items()},
        "holdout_size": {"queries": len(holdout.queries), "corpus": len(holdout.corpus)},
        "holdout_by_type": breakdown(holdout, ranks, "pair_type"),
        "holdout_by_kind": breakdown(holdout, ranks, "kind"),
        "train_sample": {name: ir_metrics(train_rs, r) for name, r in train_ranks.items()},
        "train_sample_size": {"queries": len(train_rs.queries), "corpus": len(train_rs.corpus)},
    }
    metrics["overfit_gap"] = metrics["train_sample"]["tuned"]["ndcg@10"] - metrics["holdout"]["tuned"]["ndcg@10"]
    metrics["base_gap"] = metrics["train_sample"]["base"]["ndcg@10"] - metrics["holdout"]["base"]["ndcg@10"]

    # 4. STS: general (STS-B) and domain (structure-graded holdout chunk pairs)
    s1, s2, gold, source = load_sts(config.sts, config.sts_fallback)
    metrics["sts"] = {"source": source, "n": len(gold),
                      "base_spearman": sts_spearman(base, s1, s2, gold, "sts", config.batch_size),
                      "tuned_spearman": sts_spearman(tuned, s1, s2, gold, "sts", config.batch_size)}
    d1, d2, dgold = domain_sts_pairs(split_chunks["holdout"], config.domain_sts_pairs, seed)
    if len(set(dgold)) > 1:
        metrics["domain_sts"] = {"n": len(dgold), "base_spearman": sts_spearman(base, d1, d2, dgold, "domain", config.batch_size),
                                 "tuned_spearman": sts_spearman(tuned, d1, d2, dgold, "domain", config.batch_size)}
    else:
        metrics["domain_sts"] = {"n": len(dgold), "skipped": "holdout chunks too few or too uniform to grade"}

    # 5. MTEB: the holdout as an mteb retrieval task; results travel with the model
    if config.mteb:
        metrics["mteb"] = run_mteb_tasks(run, holdout, {"base": base, "tuned": tuned}, config)

    # 6. examples, 7. outputs
    metrics["examples"] = examples(holdout, ranks, config.examples, seed)
    metrics["final_train_loss"] = manifest.get("train", {}).get("final_train_loss")
    write_json(run.metrics, metrics)
    from .report import write_report

    write_report(run, metrics, manifest)
    return metrics


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
