"""build: repository -> collect -> clean -> secrets -> chunk -> history -> pairs -> split -> dataset.

Files stream through the per-file stages in worker processes (``workers.py``); their chunks stream
to an Arrow file on disk as they come (``dataset.ChunkStore``), and pair mining keeps an index of
symbols, mentions and rows rather than the chunks' text, so memory stays flat whatever the
repository's size. The history stage reads the git log once every file is chunked (commit messages
-> the definitions they touched, ``history.py``). Each stage's counts go to ``stats/<stage>.json``, its
time to the manifest.
"""

from __future__ import annotations

import logging
import platform
import time
from importlib import metadata
from pathlib import Path

from .ingest.chunk import Chunker, TokenCounter
from .ingest.collect import RepoError, collect
from .config import Recipe
from .console import progress
from .dataset import ChunkStore, detect_license, write_card, write_dataset
from .errors import RepotuneError
from .ingest.history import read_history, write_heldout
from .models import load_counting_tokenizer
from .mining.pairs import PairMiner
from .rundir import RunDir, write_json
from .ingest.secrets import Finding
from .mining.split import CorpusIndex, split_pairs
from .stage import StageStats, track_time
from .ingest.workers import ingest, max_chunk_tokens, worker_count

log = logging.getLogger("repotune")

PACKAGES = ("repotune", "torch", "sentence-transformers", "transformers", "datasets", "huggingface_hub", "detect-secrets", "mteb", "datasketch")


class BuildError(RepotuneError, RuntimeError):
    """The repository gave nothing to train on; the message names the counts and the recipe key."""


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _explain_empty(stats: dict[str, StageStats], what: str, check: str = "") -> str:
    """One line (the CLI prints it after `error:`): the per-stage counts, then the recipe keys to look at."""
    parts = []
    for name, s in stats.items():
        if not s and name != "collect":
            continue  # a stage the build never reached
        reasons = ", ".join(f"{r}={n}" for r, n in s.dropped().items()) or "nothing"
        parts.append(f"{name} kept {s.get('kept', 0)}, dropped {reasons}")
    counts = "; ".join(parts)
    return (f"{what} after cleaning ({counts}): check `collect.include` / `collect.exclude`, `collect.max_file_bytes` "
            f"and the `clean.*` thresholds in the recipe{check}")


def build(repo: str | Path, out: str | Path, recipe: Recipe) -> dict:
    """Run collect .. dataset into ``out``; return the manifest."""
    run = RunDir(out)
    repo_path = Path(repo).expanduser()
    stats = {name: StageStats(name) for name in ("collect", "clean", "secrets", "chunk", "history", "pairs", "split")}
    findings: list[Finding] = []
    seconds: dict[str, float] = dict.fromkeys(("collect", "clean", "secrets", "chunk", "history", "pairs", "split", "dataset"), 0.0)
    started = time.perf_counter()

    files = collect(repo_path, recipe.collect, stats["collect"])  # raises RepoError on a bad path
    run.root.mkdir(parents=True, exist_ok=True)
    run.config.write_text(recipe.to_yaml())
    # checked here, before any worker starts: a chunk limit too small for the tokenizer is a recipe error
    Chunker(TokenCounter(load_counting_tokenizer(recipe.train.base_model)), max_chunk_tokens(recipe))

    # 1. collect .. chunk, file by file in worker processes; duplicates decided here, in order
    input_bytes = 0

    def counted(sources):  # bytes entering the pipeline (the denominator of build throughput), and collect's time
        nonlocal input_bytes
        sources = iter(sources)
        while True:
            with track_time(seconds, "collect"):
                source = next(sources, None)
            if source is None:
                return
            input_bytes += source.size
            yield source

    miner = PairMiner(recipe.pairs, stats["pairs"], seed=recipe.split.seed)  # the run's one seed
    corpus = CorpusIndex()
    store = ChunkStore(run.root / ".build" / "chunks.arrow")
    commit = None
    files_started = time.perf_counter()
    bar = progress(ingest(counted(files), recipe, stats, seconds), desc="files", unit="file")
    for result in bar:
        findings.extend(result.findings)
        if not result.kept:
            continue
        with track_time(seconds, "pairs"):
            miner.add(result.chunks)  # reads the chunks' structure (meta), which goes no further
            for chunk in result.chunks:
                corpus.add(chunk.path, chunk.kind)
                commit = commit or chunk.commit
        with track_time(seconds, "dataset"):
            store.add(result.chunks, result.chunk_shingles)
        bar.set_postfix(chunks=store.rows, refresh=False)
    bar.close()
    files_wall = time.perf_counter() - files_started
    store.close()
    if not store.rows:
        store.remove()
        raise BuildError(_explain_empty(stats, "0 chunks"))

    # 2. history: commit subjects -> the definitions at HEAD they touched; the newest held out (the history
    # yardstick, RUN/history/heldout.jsonl), the older ones mined as commit_definition pairs
    with track_time(seconds, "history"):
        found = read_history(repo_path, recipe.history, miner.definitions, store.chunks, stats["history"])
        if recipe.history.pairs:
            miner.add_commits(found.train)
        write_heldout(run.root, found.heldout)

    # 3. pairs: the cross-file miners read the texts they need back from the store
    with track_time(seconds, "pairs"):
        pairs = miner.finish(store.texts, store.chunks)
    if not pairs:
        store.remove()
        raise BuildError(_explain_empty(stats, f"0 pairs from {store.rows} chunks", ", and `pairs.types`"))

    # 4. split: whole files held out; the leakage check streams the training chunks' shingle hashes
    with track_time(seconds, "split"):
        corpus.shingles = store.shingles
        train, holdout, held = split_pairs(pairs, corpus, recipe.split, recipe.clean, stats["split"])

    # 5. dataset, card, stats, manifest
    with track_time(seconds, "dataset"):
        dataset_hash = write_dataset(run, train, holdout, store, held)
        store.remove()
        for s in stats.values():
            s.write(run.stats)
        write_json(run.secrets_report, {"policy": recipe.secrets.policy, "findings": [f.__dict__ for f in findings]})
        manifest = run.update_manifest(
            source={"name": repo_path.resolve().name, "path": str(repo_path.resolve()), "commit": commit},
            recipe=recipe.to_dict(),
            seed=recipe.split.seed,
            versions=versions(),
            license=detect_license(repo_path.resolve()),
            counts={"files": stats["chunk"]["files"], "chunks": store.rows, "pairs": len(pairs), "train_pairs": len(train),
                    "holdout_pairs": len(holdout), "secret_findings": len(findings),
                    "text_mb": round(store.text_bytes / 1e6, 3), "input_mb": round(input_bytes / 1e6, 3)},
            dataset_hash=dataset_hash,
            history={"commits_read": stats["history"]["commits_read"], "kept": stats["history"]["kept"],
                     "train_commits": len(found.train), "heldout_commits": len(found.heldout),
                     "pairs_mined": stats["pairs"]["type_commit_definition"], "reason": found.reason},
        )
        write_card(run, manifest, {k: dict(v) for k, v in stats.items()}, [f.__dict__ for f in findings])
    for empty, other, fix in (("train", "holdout", "lower `split.holdout_fraction`"),
                              ("holdout", "train", "raise `split.holdout_fraction`")):
        if not manifest["counts"][f"{empty}_pairs"]:  # the dataset is on disk to inspect, but cannot train or be judged
            raise BuildError(
                f"0 {empty} pairs ({len(pairs)} pairs from {store.rows} chunks in {stats['chunk']['files']} files: "
                f"{manifest['counts'][f'{other}_pairs']} {other}, {stats['split'].get('dropped_straddles_split', 0)} straddling the split, "
                f"{stats['split'].get('dropped_holdout_near_duplicate_of_train', 0)} near-duplicates dropped): the repository is too "
                f"small to hold out whole files (each kind needs 2 or more files with pairs); {fix}, or add documented code and docs (`collect.include`)")
    # per stage: seconds summed over the worker processes (read/clean, secrets, chunk, the chunks'
    # shingle hashes) and this one; files_wall is the wall time of the per-file part, workers the pool's size
    timings = {name: round(value, 3) for name, value in seconds.items()}
    return run.update_manifest(timings={"build": timings, "build_total": round(time.perf_counter() - started, 3),
                                        "build_files_wall": round(files_wall, 3), "build_workers": worker_count(recipe)})


__all__ = ["build", "BuildError", "RepoError"]
