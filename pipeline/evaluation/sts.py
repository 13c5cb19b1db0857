"""sts: what tuning may have cost the model's general sense of meaning, measured as sentence-transformers'
EmbeddingSimilarityEvaluator measures it: Spearman on STS-B (the Hub's, a local TSV, or the packaged test split), and a
domain STS on holdout chunk pairs graded by where they live (same symbol > file > folder > elsewhere)."""

from __future__ import annotations

import csv
import logging
import random
from collections import defaultdict
from pathlib import Path, PurePosixPath

from ..common import embedding_precision, file_of, hub_offline
from ..config import EvaluateConfig
from . import EvalError

log = logging.getLogger("repotune")

PACKAGED_DATA = Path(__file__).resolve().parents[1] / "data"  # pipeline/data


def load_sts(spec: str, fallback: str | None = None) -> tuple[list[str], list[str], list[float], str]:
    """(sentences1, sentences2, scores in [0, 1], source) from a Hub id, a TSV path, or packaged:NAME."""
    if spec.startswith("packaged:"):
        return _read_sts_tsv(PACKAGED_DATA / "stsb" / f"{spec.removeprefix('packaged:')}.tsv", spec)
    path = Path(spec).expanduser()
    if path.suffix in (".tsv", ".csv", ".txt") or path.exists():
        return _read_sts_tsv(path, spec)
    if not hub_offline():
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
    with embedding_precision(model):
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


def sts_metrics(models: dict, holdout_chunks: list[dict], config: EvaluateConfig, seed: int) -> dict:
    """STS-B Spearman of base and tuned, and the domain STS on structure-graded holdout chunk pairs."""
    base, tuned = models["base"], models["tuned"]
    s1, s2, gold, source = load_sts(config.sts, config.sts_fallback)
    out = {"sts": {"source": source, "n": len(gold),
                   "base_spearman": sts_spearman(base, s1, s2, gold, "sts", config.batch_size),
                   "tuned_spearman": sts_spearman(tuned, s1, s2, gold, "sts", config.batch_size)}}
    d1, d2, dgold = domain_sts_pairs(holdout_chunks, config.domain_sts_pairs, seed)
    if len(set(dgold)) > 1:
        out["domain_sts"] = {"n": len(dgold), "base_spearman": sts_spearman(base, d1, d2, dgold, "domain", config.batch_size),
                             "tuned_spearman": sts_spearman(tuned, d1, d2, dgold, "domain", config.batch_size)}
    else:
        out["domain_sts"] = {"n": len(dgold), "skipped": "holdout chunks too few or too uniform to grade"}
    return out
