"""The ingest stages, one path for every caller (``ingest``: the build, ``repotune search --corpus
FOLDER``): clean's path rules, then per file, in worker processes, read and clean it, scan it for
secrets, chunk it, and sign its chunks for split's leakage check. Every file is independent, so
both cores work; what depends on the files before (duplicates) or on all of them (pairs, split) is
left to the main process, which takes the results in the repository's order. Each result carries
its stage counters, so the stats are the same for any number of workers.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
from datasketch import LeanMinHash

from ..config import Recipe
from ..models import load_counting_tokenizer
from ..records import Chunk, SourceFile
from ..secrets import Finding, SecretScanner, redact_file, redact_pieces
from ..stage import StageStats, apply_rules, track_time
from .chunk import Chunker, TokenCounter, chunk_source
from .clean import PATH_RULES, Deduplicator, content_digest, load, minhash, text_shingle_hashes
from .collect import collect

MAX_CHUNK_PASSES = 3  # chunk, scan the chunks, redact what they show across the file: until none shows one


@dataclass
class FileResult:
    """What one file gave. ``loaded`` is False when clean's content rules dropped it (counted in
    ``stats["clean"]``); otherwise ``digest`` and ``signature`` let the main process decide duplicates."""

    path: str
    loaded: bool = False
    digest: bytes = b""
    signature: LeanMinHash | None = None  # clean's MinHash of the whole file
    kept: bool = False  # past secrets
    chunks: list[Chunk] = field(default_factory=list)  # with the structure pair mining reads (meta)
    chunk_shingles: list[bytes] = field(default_factory=list)  # each chunk's shingle hashes (uint32), for split
    findings: list[Finding] = field(default_factory=list)
    stats: dict[str, dict[str, int]] = field(default_factory=dict)  # stage -> counters of this file
    drops: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # stage -> (what, reason) of its drops
    seconds: dict[str, float] = field(default_factory=dict)  # stage -> seconds spent on this file


def max_chunk_tokens(recipe: Recipe) -> int:
    return min(recipe.chunk.max_tokens or recipe.train.max_seq_length, recipe.train.max_seq_length)


class FileWorker:
    """The per-file stages for one recipe, with their expensive objects built once per process."""

    def __init__(self, recipe: Recipe):
        self.recipe = recipe
        self.counter = TokenCounter(load_counting_tokenizer(recipe.train.base_model))
        self.max_tokens = max_chunk_tokens(recipe)
        self.scanner = SecretScanner().__enter__()  # detect-secrets configured once; the process's lifetime

    def close(self) -> None:
        self.scanner.__exit__(None, None, None)

    def __call__(self, source: SourceFile) -> FileResult:
        recipe = self.recipe
        result = FileResult(source.path)
        stats = {name: StageStats(name) for name in ("clean", "secrets", "chunk")}
        with track_time(result.seconds, "clean"):
            loaded = load(source, recipe.clean, stats["clean"], recipe.collect.max_file_bytes)
            if loaded is not None:
                result.loaded = True
                result.digest = content_digest(loaded.text)
                shingles: dict[str, int] = {}  # this file's shingle hashes, reused for its chunks
                result.signature = LeanMinHash(minhash(loaded.text, recipe.clean, shingles))  # no permutations to pickle
        if loaded is not None:
            with track_time(result.seconds, "secrets"):
                redacted = redact_file(self.scanner, loaded, recipe.secrets, stats["secrets"], result.findings)
            if redacted is not None:
                chunks, stats["chunk"] = self.chunk(redacted, result, stats["secrets"])
                result.kept, result.chunks = chunks is not None, chunks or []
            if result.kept:
                with track_time(result.seconds, "split"):
                    result.chunk_shingles = [np.array(text_shingle_hashes(c.text, recipe.clean, shingles), dtype="<u4").tobytes()
                                             for c in result.chunks]
        result.stats = {name: dict(s) for name, s in stats.items()}
        result.drops = {name: s.drops for name, s in stats.items()}
        return result

    def chunk(self, source: SourceFile, result: FileResult, secrets: StageStats) -> tuple[list[Chunk] | None, StageStats]:
        """The file's chunks, none of which shows a secret (the gate scans chunks, not files), and the
        chunk stage's counts for them: what ``redact_pieces`` finds in a chunk is redacted across the file,
        which is chunked again, a few times at most; None (and empty counts) where the file must go."""
        for _ in range(MAX_CHUNK_PASSES):
            stats = StageStats("chunk")
            with track_time(result.seconds, "chunk"):
                chunks = chunk_source(source, Chunker(self.counter, self.max_tokens, stats, self.recipe.chunk.context),
                                      self.recipe.chunk.min_chars)
            with track_time(result.seconds, "secrets"):
                again = redact_pieces(self.scanner, source, chunks, self.recipe.secrets, secrets, result.findings)
            if again is source:
                return chunks, stats
            if again is None:
                return None, StageStats("chunk")
            source = again
        secrets["kept"] -= 1
        secrets.drop("secret_not_redactable", source.path)
        return None, StageStats("chunk")


_WORKER: FileWorker | None = None


def _start(recipe: Recipe) -> None:
    global _WORKER
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one thread per worker: the workers are the parallelism
    _WORKER = FileWorker(recipe)


def _work(source: SourceFile) -> FileResult:
    return _WORKER(source)


def worker_count(recipe: Recipe) -> int:
    if recipe.build.workers:
        return recipe.build.workers
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def process_files(files: Iterable[SourceFile], recipe: Recipe) -> Iterator[FileResult]:
    """Each file's result, in the order of ``files``: in ``build.workers`` processes (forked where the
    platform allows, so the workers start in milliseconds), or in this one when that is 1."""
    workers = worker_count(recipe)
    if workers <= 1:
        worker = FileWorker(recipe)
        try:
            yield from map(worker, files)
        finally:
            worker.close()
        return
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with multiprocessing.get_context(method).Pool(workers, initializer=_start, initargs=(recipe,)) as pool:
        # a few files per task: less messaging, and the order is still the files' order
        yield from pool.imap(_work, files, chunksize=4)


def ingest(files: Iterable[SourceFile], recipe: Recipe, stats: dict[str, StageStats],
           seconds: dict[str, float] | None = None) -> Iterator[FileResult]:
    """Every file that is no duplicate of one before it, read, cleaned, scanned for secrets and chunked
    (``result.kept`` is False where the secret policy or a sensitive name dropped it: its findings still
    count). Drops are counted in ``stats["clean"]``, ``["secrets"]`` and ``["chunk"]``; each stage's
    seconds are added to ``seconds`` when given."""
    seconds = seconds if seconds is not None else {}
    dedup = Deduplicator(recipe.clean)
    listed = apply_rules(files, list(PATH_RULES), stats["clean"], count_kept=False)  # no byte read yet
    for result in process_files(listed, recipe):
        stats["clean"].merge(result.stats["clean"], result.drops["clean"])
        for stage, spent in result.seconds.items():
            seconds[stage] = seconds.get(stage, 0.0) + spent
        if not result.loaded:
            continue
        with track_time(seconds, "clean"):
            reason = dedup.check(result.path, result.digest, result.signature)
        if reason:
            stats["clean"].drop(reason, result.path)
            continue
        stats["clean"]["kept"] += 1
        stats["secrets"].merge(result.stats["secrets"], result.drops["secrets"])
        if result.kept:
            stats["chunk"].merge(result.stats["chunk"], result.drops["chunk"])
        yield result


def folder_rows(folder, recipe: Recipe, paths: set[str] | None = None) -> list[dict]:
    """The chunk rows of a plain folder (``repotune search --corpus FOLDER``, checks of a question set), by the
    build's path: collect, then ``ingest``. ``paths``: only the collected files with these repo-relative paths."""
    stats = {name: StageStats(name) for name in ("collect", "clean", "secrets", "chunk")}
    files = [f for f in collect(folder, recipe.collect, stats["collect"]) if paths is None or f.path in paths]
    return [chunk.to_row() for result in ingest(files, recipe, stats) if result.kept for chunk in result.chunks]
