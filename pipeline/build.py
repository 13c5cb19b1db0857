"""build: repository -> collect -> clean -> secrets -> chunk -> pairs -> split -> dataset.

Stages stream file records into the chunker; chunks are then held once (pair mining needs the
whole repository's symbols). Each stage's counts go to ``stats/<stage>.json``, its time to the
manifest.
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path

from .errors import RepotuneError
from .chunk import Chunker, TokenCounter, chunk_files
from .clean import clean
from .collect import RepoError, collect
from .config import Recipe
from .console import progress
from .dataset import detect_license, write_card, write_dataset
from .models import load_tokenizer
from .pairs import mine_pairs
from .rundir import RunDir, write_json
from .secrets import Finding, redact_secrets
from .split import split_pairs
from .stage import StageStats

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


def _timed(records: Iterable, name: str, timings: dict[str, float]) -> Iterator:
    """Time spent producing each record, upstream stages included (the manifest subtracts)."""
    it = iter(records)
    while True:
        start = time.perf_counter()
        try:
            record = next(it)
        except StopIteration:
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
            return
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - start
        yield record


def _exclusive(inclusive: dict[str, float], order: list[str]) -> dict[str, float]:
    out, upstream = {}, 0.0
    for name in order:
        out[name] = round(max(0.0, inclusive.get(name, 0.0) - upstream), 3)
        upstream = inclusive.get(name, 0.0)
    return out


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
    stats = {name: StageStats(name) for name in ("collect", "clean", "secrets", "chunk", "pairs", "split")}
    findings: list[Finding] = []
    timings: dict[str, float] = {}
    started = time.perf_counter()

    files = collect(repo_path, recipe.collect, stats["collect"])  # raises RepoError on a bad path
    run.root.mkdir(parents=True, exist_ok=True)
    run.config.write_text(recipe.to_yaml())
    tokenizer = load_tokenizer(recipe.train.base_model)
    max_tokens = min(recipe.chunk.max_tokens or recipe.train.max_seq_length, recipe.train.max_seq_length)
    chunker = Chunker(TokenCounter(tokenizer), max_tokens, stats["chunk"])

    input_bytes = [0]

    def counted(sources):  # bytes entering the pipeline: the denominator of build throughput
        for source in sources:
            input_bytes[0] += source.size
            yield source

    files = _timed(counted(files), "collect", timings)
    files = _timed(clean(files, recipe.clean, stats["clean"], recipe.collect), "clean", timings)
    files = _timed(redact_secrets(files, recipe.secrets, stats["secrets"], findings), "secrets", timings)
    bar = progress(files, desc="files", unit="file")
    chunks = []
    for chunk in _timed(chunk_files(bar, chunker, recipe.chunk.min_chars), "chunk", timings):
        chunks.append(chunk)
        bar.set_postfix(chunks=len(chunks), refresh=False)
    bar.close()
    timings = _exclusive(timings, ["collect", "clean", "secrets", "chunk"])
    if not chunks:
        raise BuildError(_explain_empty(stats, "0 chunks"))

    start = time.perf_counter()
    pairs = mine_pairs(chunks, recipe.pairs, stats["pairs"], seed=recipe.split.seed)  # the run's one seed
    for chunk in chunks:  # the structure pair mining needed (docstrings, bodies) is not kept: memory
        chunk.meta.clear()
    timings["pairs"] = round(time.perf_counter() - start, 3)
    if not pairs:
        raise BuildError(_explain_empty(stats, f"0 pairs from {len(chunks)} chunks", ", and `pairs.types`"))
    start = time.perf_counter()
    train, holdout, held = split_pairs(pairs, chunks, recipe.split, recipe.clean, stats["split"])
    timings["split"] = round(time.perf_counter() - start, 3)

    start = time.perf_counter()
    dataset_hash = write_dataset(run, train, holdout, chunks, held)
    for s in stats.values():
        s.write(run.stats)
    write_json(run.secrets_report, {"policy": recipe.secrets.policy, "findings": [f.__dict__ for f in findings]})
    manifest = run.update_manifest(
        source={"name": repo_path.resolve().name, "path": str(repo_path.resolve()), "commit": chunks[0].commit},
        recipe=recipe.to_dict(),
        seed=recipe.split.seed,
        versions=versions(),
        license=detect_license(repo_path.resolve()),
        counts={"files": stats["chunk"]["files"], "chunks": len(chunks), "pairs": len(pairs), "train_pairs": len(train),
                "holdout_pairs": len(holdout), "secret_findings": len(findings),
                "text_mb": round(sum(len(c.text.encode()) for c in chunks) / 1e6, 3), "input_mb": round(input_bytes[0] / 1e6, 3)},
        dataset_hash=dataset_hash,
    )
    write_card(run, manifest, {k: dict(v) for k, v in stats.items()}, [f.__dict__ for f in findings])
    timings["dataset"] = round(time.perf_counter() - start, 3)
    for empty, other, fix in (("train", "holdout", "lower `split.holdout_fraction`"),
                              ("holdout", "train", "raise `split.holdout_fraction`")):
        if not manifest["counts"][f"{empty}_pairs"]:  # the dataset is on disk to inspect, but cannot train or be judged
            raise BuildError(
                f"0 {empty} pairs ({len(pairs)} pairs from {len(chunks)} chunks in {stats['chunk']['files']} files: "
                f"{manifest['counts'][f'{other}_pairs']} {other}, {stats['split'].get('dropped_straddles_split', 0)} straddling the split, "
                f"{stats['split'].get('dropped_holdout_near_duplicate_of_train', 0)} near-duplicates dropped): the repository is too "
                f"small to hold out whole files (each kind needs 2 or more files with pairs); {fix}, or add documented code and docs (`collect.include`)")
    return run.update_manifest(timings={"build": timings, "build_total": round(time.perf_counter() - started, 3)})


__all__ = ["build", "BuildError", "RepoError"]
