"""build: a repository -> the run's dataset, in the order the code runs it:

1. collect lists the files; then per file, in worker processes (``ingest.workers``): read and clean -> secrets ->
   chunk; each file's chunks stream to an Arrow file on disk (``dataset.ChunkStore``) and the pair miner indexes
   them as they come (its per-file pairs: docstring -> code, comment -> block, heading -> section, and the symbols
   and mentions the cross-file miners need), so memory stays flat whatever the repository's size;
2. history (``mining.history``): the git log's subjects placed on the definitions the miner indexed; the newest
   held out (the history yardstick), the older ones added to the miner as commit pairs;
3. pairs: the cross-file miners finish, reading back the texts they need from the store; dedup and balance;
4. split: whole files held out, the leakage check;
5. dataset: pairs, corpus, card, stats (``stats/<stage>.json``) and the manifest (each stage's time)."""

from __future__ import annotations

import logging
import platform
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from .config import Recipe
from .console import progress
from .dataset import ChunkStore, detect_license, write_card, write_dataset
from .errors import RepotuneError
from .ingest.chunk import Chunker, TokenCounter
from .ingest.collect import RepoError, collect, remote_url
from .ingest.workers import ingest, max_chunk_tokens, worker_count
from .mining.history import read_history, write_heldout
from .mining.pairs import PairMiner
from .mining.split import CorpusIndex, split_pairs
from .models import load_counting_tokenizer
from .rundir import RunDir, write_json
from .secrets import Finding, SecretScanner
from .stage import StageStats, track_time

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
    """One line (the CLI prints it after `error:`): the per-stage counts, then the recipe keys to look at; a repository
    with no file at all is said to be empty (no recipe key can help it)."""
    collected = stats["collect"]
    if not collected.get("kept", 0) and not collected.dropped():
        return (f"{what}: the repository holds no file to read (empty, or a clone without a checkout: `git checkout` a "
                "branch); give repotune a folder with code or documentation")
    parts = []
    for name, s in stats.items():
        if not s and name != "collect":
            continue  # a stage the build never reached
        reasons = ", ".join(f"{r}={n}" for r, n in s.dropped().items()) or "nothing"
        parts.append(f"{name} kept {s.get('kept', 0)}, dropped {reasons}")
    counts = "; ".join(parts)
    return (f"{what} after cleaning ({counts}): check `collect.include` / `collect.exclude`, `collect.max_file_bytes` "
            f"and the `clean.*` thresholds in the recipe{check}")


@dataclass
class Ingested:
    """What the per-file pass leaves for the whole-repository steps: the miner's index, the corpus's
    files, the chunks on disk, the secret findings and the pass's own figures."""

    miner: PairMiner
    corpus: CorpusIndex
    store: ChunkStore
    findings: list[Finding] = field(default_factory=list)
    commit: str | None = None
    input_bytes: int = 0
    files_wall: float = 0.0


def ingest_files(files, run: RunDir, recipe: Recipe, stats: dict[str, StageStats], seconds: dict[str, float]) -> Ingested:
    """Collect .. chunk, file by file in worker processes (duplicates decided here, in order); each kept
    file's chunks go to the miner's index, the corpus and the store on disk. No chunk at all: BuildError."""
    done = Ingested(PairMiner(recipe.pairs, stats["pairs"], seed=recipe.split.seed),  # the run's one seed
                    CorpusIndex(), ChunkStore(run.root / ".build" / "chunks.arrow"))

    def counted(sources):  # bytes entering the pipeline (the denominator of build throughput), and collect's time
        sources = iter(sources)
        while True:
            with track_time(seconds, "collect"):
                source = next(sources, None)
            if source is None:
                return
            done.input_bytes += source.size
            yield source

    started = time.perf_counter()
    bar = progress(ingest(counted(files), recipe, stats, seconds), desc="files", unit="file")
    for result in bar:
        done.findings.extend(result.findings)
        if not result.kept:
            continue
        with track_time(seconds, "pairs"):
            done.miner.add(result.chunks)  # reads the chunks' structure (meta), which goes no further
            for chunk in result.chunks:
                done.corpus.add(chunk.path, chunk.kind)
                done.commit = done.commit or chunk.commit
        with track_time(seconds, "dataset"):
            done.store.add(result.chunks, result.chunk_shingles)
        bar.set_postfix(chunks=done.store.rows, refresh=False)
    bar.close()
    done.files_wall = time.perf_counter() - started
    done.store.close()
    if not done.store.rows:
        done.store.remove()
        raise BuildError(_explain_empty(stats, "0 chunks"))
    return done


def _refuse_an_empty_side(counts: dict, stats: dict[str, StageStats]) -> None:
    """The dataset is on disk to inspect, but with no train or no holdout pair it can neither train nor be judged."""
    for empty, other, fix in (("train", "holdout", "lower `split.holdout_fraction`"),
                              ("holdout", "train", "raise `split.holdout_fraction`")):
        if not counts[f"{empty}_pairs"]:
            raise BuildError(
                f"0 {empty} pairs ({counts['pairs']} pairs from {counts['chunks']} chunks in {counts['files']} files: "
                f"{counts[f'{other}_pairs']} {other}, {stats['split'].get('dropped_straddles_split', 0)} straddling the split, "
                f"{stats['split'].get('dropped_holdout_near_duplicate_of_train', 0)} near-duplicates dropped): the repository is too "
                f"small to hold out whole files (each kind needs 2 or more files with pairs); {fix}, or add documented code and docs (`collect.include`)")


def build(repo: str | Path, out: str | Path, recipe: Recipe) -> dict:
    """Run collect .. dataset into ``out``; return the manifest."""
    run = RunDir(out)
    repo_path = Path(repo).expanduser()
    stats = {name: StageStats(name) for name in ("collect", "clean", "secrets", "chunk", "history", "pairs", "split")}
    seconds: dict[str, float] = dict.fromkeys(("collect", "clean", "secrets", "chunk", "history", "pairs", "split", "dataset"), 0.0)
    started = time.perf_counter()

    # raises RepoError on a bad path; the run's question set and output folder are never its training data
    files = collect(repo_path, recipe.collect, stats["collect"], own=[recipe.evaluate.questions, out])
    run.root.mkdir(parents=True, exist_ok=True)
    run.config.write_text(recipe.to_yaml())
    # checked here, before any worker starts: a chunk limit too small for the tokenizer is a recipe error
    Chunker(TokenCounter(load_counting_tokenizer(recipe.train.base_model)), max_chunk_tokens(recipe))

    # 1. collect .. chunk, file by file in worker processes
    done = ingest_files(files, run, recipe, stats, seconds)
    store = done.store

    # 2. history: commit subjects -> the definitions at HEAD they touched; the newest held out (the history
    # yardstick, RUN/history/heldout.jsonl), the older ones mined as commit_definition pairs
    with track_time(seconds, "history"):
        found = read_history(repo_path, recipe.history, done.miner.definitions, store.chunks, stats["history"])
        if recipe.history.pairs:
            done.miner.add_commits(found.train)
        write_heldout(run.root, found.heldout)

    # 3. pairs: the cross-file miners read the texts they need back from the store
    with track_time(seconds, "pairs"):
        pairs = done.miner.finish(store.texts, store.chunks)
    if not pairs:
        store.remove()
        raise BuildError(_explain_empty(stats, f"0 pairs from {store.rows} chunks", ", and `pairs.types`"))

    # 4. split: whole files held out; the leakage check streams the training chunks' shingle hashes
    with track_time(seconds, "split"):
        done.corpus.shingles = store.shingles
        train, holdout, held = split_pairs(pairs, done.corpus, recipe.split, recipe.clean, stats["split"])

    # 5. dataset, card, stats, manifest
    findings = [f.__dict__ for f in done.findings]
    with track_time(seconds, "dataset"):
        dataset_hash = write_dataset(run, train, holdout, store, held)
        store.remove()
        with SecretScanner() as scanner:  # what each stage dropped, any path with a credential in it redacted
            for s in stats.values():
                s.write(run.stats)
                s.write_drops(run.dropped, lambda path: scanner.redact_path(path)[0])
        write_json(run.secrets_report, {"policy": recipe.secrets.policy, "findings": findings})
        manifest = run.update_manifest(
            source={"name": repo_path.resolve().name, "path": str(repo_path.resolve()), "commit": done.commit,
                    "url": remote_url(repo_path.resolve())},
            recipe=recipe.to_dict(),
            seed=recipe.split.seed,
            versions=versions(),
            license=recipe.collect.license or detect_license(repo_path.resolve()),
            counts={"files": stats["chunk"]["files"], "chunks": store.rows, "pairs": len(pairs), "train_pairs": len(train),
                    "holdout_pairs": len(holdout), "secret_findings": len(findings),
                    "text_mb": round(store.text_bytes / 1e6, 3), "input_mb": round(done.input_bytes / 1e6, 3)},
            dataset_hash=dataset_hash,
            history={"commits_read": stats["history"]["commits_read"], "kept": stats["history"]["kept"],
                     "train_commits": len(found.train), "heldout_commits": len(found.heldout),
                     "pairs_mined": stats["pairs"]["type_commit_definition"], "reason": found.reason},
        )
        write_card(run, manifest, {k: dict(v) for k, v in stats.items()}, findings)
    _refuse_an_empty_side(manifest["counts"], stats)
    # per stage: seconds summed over the worker processes (read/clean, secrets, chunk, the chunks'
    # shingle hashes) and this one; files_wall is the wall time of the per-file part, workers the pool's size
    timings = {name: round(value, 3) for name, value in seconds.items()}
    return run.update_manifest(timings={"build": timings, "build_total": round(time.perf_counter() - started, 3),
                                        "build_files_wall": round(done.files_wall, 3), "build_workers": worker_count(recipe)})


__all__ = ["build", "BuildError", "RepoError"]
