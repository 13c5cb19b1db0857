"""split: hold out whole files, seeded and stratified by kind, then drop holdout pairs whose
positive is a near-duplicate of a training chunk (leakage-safe by construction)."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from datasketch import MinHashLSH

from ..common import file_of
from ..config import CleanConfig, SplitConfig
from ..ingest.clean import disjoint_means_no_shared_band, minhash_of_hashes, text_shingle_hashes
from ..records import Chunk, Pair, path_of_id
from ..stage import StageStats


@dataclass
class CorpusIndex:
    """What split needs of the corpus, without holding its text: the files of each kind, and a stream
    of every chunk's (path, shingle hashes) for the leakage check."""

    files_by_kind: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    shingles: Callable[[], Iterable[tuple[str, list[int]]]] = lambda: ()

    def add(self, path: str, kind: str) -> None:
        self.files_by_kind[kind].add(file_of(path))

    @classmethod
    def of(cls, chunks: list[Chunk], clean_config: CleanConfig) -> CorpusIndex:
        """The index of chunks held in memory (shingle hashes computed as they are streamed)."""
        index = cls(shingles=lambda: ((c.path, text_shingle_hashes(c.text, clean_config)) for c in chunks))
        for c in chunks:
            index.add(c.path, c.kind)
        return index


def holdout_files(files_by_kind: dict[str, set[str]], config: SplitConfig) -> set[str]:
    """Per kind, a seeded ``holdout_fraction`` of the files (at least one where a kind has two)."""
    held: set[str] = set()
    rng = random.Random(config.seed)
    for kind in sorted(files_by_kind):
        files = sorted(files_by_kind[kind] - held)
        n = math.ceil(len(files) * config.holdout_fraction) if len(files) >= 2 else 0
        held |= set(rng.sample(files, n))
    return held


MAX_TOPPED_UP_SHARE = 1 / 3  # split.min_holdout_pairs never holds out more than this share of the pairs


def assign(pairs: list[Pair], held: set[str]) -> tuple[list[Pair], list[Pair], list[Pair]]:
    """(train, holdout, straddling): a pair goes where its files go; a pair whose anchor and positive come from files
    on different sides (a doc mention of a code definition) straddles the split."""
    train, holdout, straddling = [], [], []
    for p in pairs:
        sides = {file_of(path_of_id(cid) or p.path) in held for cid in (p.anchor_chunk_id, p.positive_chunk_id)}
        (straddling if len(sides) > 1 else holdout if sides == {True} else train).append(p)
    return train, holdout, straddling


def topped_up(pairs: list[Pair], held: set[str], config: SplitConfig) -> tuple[set[str], tuple[list[Pair], list[Pair], list[Pair]]]:
    """``held`` and, while the holdout has fewer than ``split.min_holdout_pairs`` pairs, one more training file at a
    time (a seeded order of the files training pairs come from), as long as the holdout stays within
    ``MAX_TOPPED_UP_SHARE`` of the pairs; with the pairs ``assign``ed to it. A repository whose fraction of files
    already gives enough is left as it is."""
    assigned = assign(pairs, held)
    candidates = sorted({file_of(p.path) for p in assigned[0]} - held)
    random.Random(config.seed + 1).shuffle(candidates)
    while len(assigned[1]) < config.min_holdout_pairs and candidates:
        more = held | {candidates.pop()}
        wider = assign(pairs, more)
        if len(wider[1]) <= MAX_TOPPED_UP_SHARE * len(pairs):
            held, assigned = more, wider
    return held, assigned


def split_pairs(pairs: list[Pair], corpus: CorpusIndex, config: SplitConfig, clean_config: CleanConfig, stats: StageStats) -> tuple[list[Pair], list[Pair], set[str]]:
    """(train, holdout, holdout file set). A pair goes where its files go; a pair whose anchor and
    positive come from files on different sides (a doc mention of a code definition) is dropped:
    in train it would teach a held-out file's text, in holdout it would test a training file's."""
    fraction = holdout_files(corpus.files_by_kind, config)
    held, (train, holdout, straddling) = topped_up(pairs, fraction, config)
    for p in straddling:
        stats.drop("straddles_split", p.positive_chunk_id)
    # leakage check: a holdout positive that nearly repeats a training chunk measures memory, not search.
    # The LSH holds the few holdout positives and every training chunk is looked up in it, streamed:
    # the same candidate relation (a shared band) as the other way round, without an index of the corpus.
    # A chunk sharing no shingle with any holdout positive cannot share a band with one (see
    # clean.disjoint_means_no_shared_band): its signature is not even computed.
    lsh = MinHashLSH(threshold=clean_config.near_dup_threshold, num_perm=clean_config.num_perm)
    holdout_shingles: set[int] = set()
    for i, p in enumerate(holdout):
        hashes = text_shingle_hashes(p.positive, clean_config)
        holdout_shingles.update(hashes)
        lsh.insert(i, minhash_of_hashes(hashes, clean_config))
    prefilter = disjoint_means_no_shared_band(clean_config)
    leaked: set[int] = set()
    if holdout:
        for path, hashes in corpus.shingles():
            if file_of(path) not in held and not (prefilter and holdout_shingles.isdisjoint(hashes)):
                leaked.update(lsh.query(minhash_of_hashes(hashes, clean_config)))
    kept = []
    for i, p in enumerate(holdout):
        if i in leaked:
            stats.drop("holdout_near_duplicate_of_train", p.positive_chunk_id)
        else:
            kept.append(p)
    stats.update({"train": len(train), "holdout": len(kept), "holdout_files": len(held), "holdout_files_topped_up": len(held - fraction)})
    for kind in ("code", "docs"):
        stats[f"holdout_{kind}"] = sum(p.kind == kind for p in kept)
    return train, kept, held


def dev_files(paths: list[str], fraction: float, seed: int) -> set[str]:
    """A seeded ``fraction`` of the files of ``paths`` (at least one when there are two or more): the
    dev split that model selection scores, carved from training files, never from the holdout."""
    files = sorted({file_of(p) for p in paths})
    n = max(1, round(len(files) * fraction)) if len(files) >= 2 and fraction > 0 else 0
    return set(random.Random(seed).sample(files, n))
