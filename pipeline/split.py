"""split: hold out whole files, seeded and stratified by kind, then drop holdout pairs whose
positive is a near-duplicate of a training chunk (leakage-safe by construction)."""

from __future__ import annotations

import math
import random
from collections import defaultdict

from datasketch import MinHashLSH

from .clean import minhash
from .config import CleanConfig, SplitConfig
from .records import Chunk, Pair
from .stage import StageStats


def file_of(path: str) -> str:
    """A notebook's cells (nb.ipynb#markdown, nb.ipynb#python) belong to one file."""
    return path.split("#", 1)[0]


def holdout_files(chunks: list[Chunk], config: SplitConfig) -> set[str]:
    """Per kind, a seeded ``holdout_fraction`` of the files (at least one where a kind has two)."""
    by_kind: dict[str, set[str]] = defaultdict(set)
    for c in chunks:
        by_kind[c.kind].add(file_of(c.path))
    held: set[str] = set()
    rng = random.Random(config.seed)
    for kind in sorted(by_kind):
        files = sorted(by_kind[kind] - held)
        n = math.ceil(len(files) * config.holdout_fraction) if len(files) >= 2 else 0
        held |= set(rng.sample(files, n))
    return held


def split_pairs(pairs: list[Pair], chunks: list[Chunk], config: SplitConfig, clean_config: CleanConfig, stats: StageStats) -> tuple[list[Pair], list[Pair], set[str]]:
    """(train, holdout, holdout file set). A pair goes where its files go; a pair whose anchor and
    positive come from files on different sides (a doc mention of a code definition) is dropped:
    in train it would teach a held-out file's text, in holdout it would test a training file's."""
    held = holdout_files(chunks, config)
    file_by_id = {c.id: file_of(c.path) for c in chunks}
    train, holdout = [], []
    for p in pairs:
        sides = {file_by_id.get(cid, file_of(p.path)) in held for cid in (p.anchor_chunk_id, p.positive_chunk_id)}
        if len(sides) > 1:
            stats.drop("straddles_split", p.positive_chunk_id)
        elif sides == {True}:
            holdout.append(p)
        else:
            train.append(p)
    # leakage check: a holdout positive that nearly repeats a training chunk measures memory, not search
    lsh = MinHashLSH(threshold=clean_config.near_dup_threshold, num_perm=clean_config.num_perm)
    for c in chunks:
        if file_of(c.path) not in held:
            lsh.insert(c.id, minhash(c.text, clean_config))
    kept = []
    for p in holdout:
        if lsh.query(minhash(p.positive, clean_config)):
            stats.drop("holdout_near_duplicate_of_train", p.positive_chunk_id)
        else:
            kept.append(p)
    stats.update({"train": len(train), "holdout": len(kept), "holdout_files": len(held)})
    for kind in ("code", "docs"):
        stats[f"holdout_{kind}"] = sum(p.kind == kind for p in kept)
    return train, kept, held


def dev_files(paths: list[str], fraction: float, seed: int) -> set[str]:
    """A seeded ``fraction`` of the files of ``paths`` (at least one when there are two or more): the
    dev split that model selection scores, carved from training files, never from the holdout."""
    files = sorted({file_of(p) for p in paths})
    n = max(1, round(len(files) * fraction)) if len(files) >= 2 and fraction > 0 else 0
    return set(random.Random(seed).sample(files, n))
