"""dataset: pairs and chunk corpus as ``datasets`` objects on disk, with a dataset card.

``dataset/pairs`` is a DatasetDict (``train``, ``holdout``); ``dataset/corpus`` the chunks with a
``split`` column; ``dataset/README.md`` the card, generated with huggingface_hub's card utilities
from ``templates/dataset_card.md``. The content hash (not the file bytes, which carry
fingerprints) identifies the dataset in the manifest and in the gate's result.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
from datasets import Dataset, DatasetDict, Features, Value, load_from_disk
from datasets.arrow_writer import ArrowWriter
from datasets.utils import disable_progress_bars, enable_progress_bars, is_progress_bar_enabled
from huggingface_hub import DatasetCard, DatasetCardData

from .common import file_of
from .mining.pairs import upsample_order
from .records import CHUNK_COLUMNS, PAIR_COLUMNS, Chunk, Pair
from .rundir import RunDir, RunError

TEMPLATE = Path(__file__).parent / "templates" / "dataset_card.md"

# Arrow types of the records' fields (records.CHUNK_COLUMNS, PAIR_COLUMNS: the one list of each)
_ARROW = {"str": "string", "str | None": "string", "int": "int32"}


def _features(record, columns: tuple[str, ...], **extra: Value) -> Features:
    types = {f.name: f.type for f in dataclasses.fields(record)}
    return Features({**{name: Value(_ARROW[types[name]]) for name in columns}, **extra})


PAIR_FEATURES = _features(Pair, PAIR_COLUMNS)
CHUNK_FEATURES = _features(Chunk, CHUNK_COLUMNS, split=Value("string"))  # split: the chunk's file's side

_LICENSES = [("apache license", "apache-2.0"), ("mit license", "mit"), ("permission is hereby granted, free of charge", "mit"),
             ("bsd 3-clause", "bsd-3-clause"), ("redistribution and use in source and binary", "bsd"),
             ("gnu general public license", "gpl"), ("mozilla public license", "mpl-2.0")]


def project_url() -> str:
    """repotune's home, from the installed package's metadata (``[project.urls] Homepage`` in pyproject.toml)."""
    from importlib import metadata

    try:
        urls = metadata.metadata("repotune").get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        urls = []
    found = dict(u.split(", ", 1) for u in urls if ", " in u)
    return found.get("Homepage") or found.get("homepage") or "https://pypi.org/project/repotune/"


def detect_license(repo: Path) -> str:
    """The repository's licence id from its LICENSE file, or 'other' (then check it by hand)."""
    for path in sorted(repo.glob("LICEN[CS]E*")) + sorted(repo.glob("COPYING*")):
        if path.is_file():
            head = path.read_text(errors="replace")[:3000].lower()
            return next((spdx for needle, spdx in _LICENSES if needle in head), "other")
    return "other"


def _digest_rows(rows, digest) -> None:
    """Feed each row to the content hash (one JSON line per row, keys sorted), a split marker first."""
    digest.update(b"\x00split\x00")
    for row in rows:
        digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode())


def _columns(rows, features: Features, digest) -> Dataset:
    """A Dataset built column by column (no list of row dicts held), each row fed to ``digest``."""
    columns: dict[str, list] = {name: [] for name in features}

    def each(rows):
        for row in rows:
            for name, values in columns.items():
                values.append(row[name])
            yield row

    _digest_rows(each(rows), digest)
    return Dataset.from_dict(columns, features=features)


# the build's chunk store: the corpus columns but `split` (not known until every file is chunked), and
# each chunk's shingle hashes (computed where the chunk was made, read back by split's leakage check)
STORE_FEATURES = _features(Chunk, CHUNK_COLUMNS, shingles=Value("binary"))


class ChunkStore:
    """The build's chunks, written to one Arrow file as each file is chunked and read back as a
    stream of record batches: the corpus is never held in memory whole, whatever the repository's size."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer: ArrowWriter | None = ArrowWriter(features=STORE_FEATURES, path=str(path))
        self.rows = 0
        self.text_bytes = 0

    def add(self, chunks: list[Chunk], shingles: list[bytes]) -> None:
        if not chunks:
            return
        columns: dict[str, list] = {name: [] for name in STORE_FEATURES}
        for chunk, hashes in zip(chunks, shingles, strict=True):
            row = chunk.to_row()
            row["shingles"] = hashes
            for name, values in columns.items():
                values.append(row[name])
            self.text_bytes += len(chunk.text.encode())
        self._writer.write_batch(columns)
        self.rows += len(chunks)

    def close(self) -> ChunkStore:
        if self._writer is not None:
            self._writer.finalize()
            self._writer = None
        return self

    def batches(self, columns: list[str]) -> Iterator:
        """Record batches of ``columns``, in corpus order, read one at a time (not memory-mapped: a
        pass over the corpus leaves nothing of it resident)."""
        self.close()
        if not self.rows:
            return
        with pa.OSFile(str(self.path)) as source:
            for batch in pa.ipc.open_stream(source):
                yield batch.select(columns)

    def texts(self, rows: set[int]) -> dict[int, str]:
        """The texts of these rows, in one pass."""
        found, offset = {}, 0
        for batch in self.batches(["text"]) if rows else ():
            wanted = [r - offset for r in rows if offset <= r < offset + batch.num_rows]
            if wanted:
                found.update(zip((offset + i for i in wanted), batch.column(0).take(pa.array(wanted)).to_pylist()))
            offset += batch.num_rows
        return found

    def chunks(self) -> Iterator[Chunk]:
        """Every chunk, streamed, without the structure pair mining used (``meta``)."""
        for batch in self.batches(list(CHUNK_COLUMNS)):
            for row in batch.to_pylist():
                yield Chunk(**{**row, "commit": row["commit"] or None})

    def shingles(self) -> Iterator[tuple[str, list[int]]]:
        """(path, shingle hashes) of every chunk, streamed."""
        for batch in self.batches(["path", "shingles"]):
            for path, hashes in zip(batch.column(0).to_pylist(), batch.column(1).to_pylist()):
                yield path, np.frombuffer(hashes, dtype="<u4").tolist()

    def write_corpus(self, path: Path, held_files: set[str], digest) -> Dataset:
        """The corpus dataset, written batch by batch to ``path``: the stored columns without shingle
        hashes, and each chunk's split; every row fed to ``digest`` on the way. Read back
        memory-mapped: no column of the corpus is held in memory whole."""
        writer = ArrowWriter(features=CHUNK_FEATURES, path=str(path))

        def rows():
            for batch in self.batches(list(CHUNK_COLUMNS)):
                columns = batch.to_pydict()
                columns["split"] = ["holdout" if file_of(p) in held_files else "train" for p in columns["path"]]
                writer.write_batch(columns)
                yield from (dict(zip(columns, values)) for values in zip(*columns.values()))

        _digest_rows(rows(), digest)
        writer.finalize()
        return Dataset.from_file(str(path))

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)
        self.path.with_name("corpus.arrow").unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # its folder, once empty
            self.path.parent.rmdir()


def write_dataset(run: RunDir, train: list[Pair], holdout: list[Pair], store: ChunkStore, held_files: set[str]) -> str:
    """Save pairs and corpus under ``run.dataset`` (via a temporary folder, then rename); return the
    content hash: sha256 over the rows themselves, so the same inputs and seed give the same hash on
    any machine (the files carry random fingerprints)."""
    digest = hashlib.sha256()
    pairs = DatasetDict({
        "train": _columns((p.to_row() for p in train), PAIR_FEATURES, digest),
        "holdout": _columns((p.to_row() for p in holdout), PAIR_FEATURES, digest),
    })
    corpus = store.write_corpus(store.path.with_name("corpus.arrow"), held_files, digest)
    tmp = run.root / ".dataset.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    with _quiet_datasets():
        # an empty split saved with the default shard count has no Arrow file, and load_from_disk then
        # fails: give it one (empty) shard so any split size reads back
        pairs.save_to_disk(str(tmp / "pairs"), num_shards={name: 1 for name, split in pairs.items() if len(split) == 0})
        corpus.save_to_disk(str(tmp / "corpus"), num_shards=1 if len(corpus) == 0 else None)
    shutil.rmtree(run.dataset, ignore_errors=True)
    tmp.rename(run.dataset)
    return digest.hexdigest()


@contextlib.contextmanager
def _quiet_datasets():
    """No "Saving the dataset" bars: repotune's own progress is what the terminal shows."""
    was_enabled = is_progress_bar_enabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            enable_progress_bars()


def load_pairs(run: RunDir) -> DatasetDict:
    if not (run.pairs / "dataset_dict.json").is_file():
        raise RunError(f"no dataset in {run.root}: run `repotune build REPO --out {run.root}` first")
    return load_from_disk(str(run.pairs))


def load_corpus(run: RunDir) -> Dataset:
    if not run.corpus.is_dir():
        raise RunError(f"no chunk corpus in {run.root}: run `repotune build REPO --out {run.root}` first")
    return load_from_disk(str(run.corpus))


def write_card(run: RunDir, manifest: dict, stats: dict[str, dict], findings: list[dict], usage: str = "") -> DatasetCard:
    """The dataset card: statistics, drop reasons, secret-scan summary, licence, provenance."""
    pairs = load_pairs(run)
    corpus = load_corpus(run)
    by_type: dict[str, list[int]] = {}
    for i, split in enumerate(("train", "holdout")):
        for t, n in Counter(pairs[split]["pair_type"]).items():
            by_type.setdefault(t, [0, 0])[i] = n
    n_rows = len(pairs["train"]) + len(pairs["holdout"]) + len(corpus)
    size = "n<1K" if n_rows < 1000 else "1K<n<10K" if n_rows < 10_000 else "10K<n<100K" if n_rows < 100_000 else "100K<n<1M"
    source = manifest["source"]
    card_data = DatasetCardData(
        language=["en", "code"],
        license=manifest.get("license", "other"),
        pretty_name=f"repotune pairs: {source['name']}",
        size_categories=[size],
        task_categories=["sentence-similarity", "feature-extraction"],
        tags=["repotune", "sentence-transformers", "code-search", "retrieval"],
        configs=[{"config_name": "pairs", "data_files": [{"split": "train", "path": "pairs/train/*.arrow"}, {"split": "holdout", "path": "pairs/holdout/*.arrow"}]},
                 {"config_name": "corpus", "data_files": [{"split": "train", "path": "corpus/*.arrow"}]}],
    )
    split_stats = stats.get("split", {})
    pairs_recipe = manifest.get("recipe", {}).get("pairs", {})
    balance_seen = None
    if pairs_recipe.get("balance") == "upsample" and pairs_recipe.get("balance_code_share") is not None:
        kinds = pairs["train"]["kind"]
        seen = [kinds[i] for i in upsample_order(kinds, pairs_recipe["balance_code_share"], manifest.get("seed", 0))]
        balance_seen = {"code": seen.count("code"), "docs": len(seen) - seen.count("code"),
                        "code_rows": kinds.count("code"), "docs_rows": len(kinds) - kinds.count("code")}
    card = DatasetCard.from_template(
        card_data,
        template_path=str(TEMPLATE),
        pretty_name=card_data.pretty_name,
        source_repo=source.get("url") or source["name"],
        commit=source.get("commit") or "",
        n_train=len(pairs["train"]), n_holdout=len(pairs["holdout"]), n_corpus=len(corpus),
        holdout_files=split_stats.get("holdout_files", 0), seed=manifest.get("seed"),
        leak_dropped=split_stats.get("dropped_holdout_near_duplicate_of_train", 0),
        chunks_by_kind=dict(sorted(Counter(corpus["kind"]).items())),
        chunks_by_language=dict(sorted(Counter(corpus["language"]).items())),
        pairs_by_type=dict(sorted(by_type.items())),
        balanced=pairs_recipe.get("balance_code_share"), balance_seen=balance_seen,
        balance_dropped=stats.get("pairs", {}).get("dropped_balance", 0),
        history=stats.get("history", {}),
        drops={stage: {k[len("dropped_"):]: v for k, v in s.items() if k.startswith("dropped_")} for stage, s in stats.items()},
        secrets_policy=manifest.get("recipe", {}).get("secrets", {}).get("policy", "redact"),
        secrets_by_type=dict(sorted(Counter(f["type"] for f in findings).items())),
        license=manifest.get("license", "other"),
        recipe=manifest.get("recipe", {}).get("name", "?"),
        version=manifest.get("versions", {}).get("repotune", "?"),
        usage=usage, project_url=project_url(),
    )
    card.save(run.dataset / "README.md")
    return card
