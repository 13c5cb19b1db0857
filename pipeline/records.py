"""The records that flow between repotune's stages: one record type per stream.

``SourceFile`` flows through collect -> clean -> secrets, ``Segment`` (a unit a parser found) from
the parsers (chunk.py, syntax.py) to the chunker, ``Chunk`` out of chunk, ``Pair`` out of pairs.
The streams' records are frozen: a stage returns a new record (``dataclasses.replace``) rather than
mutating the one it was given. Records a single stage keeps for itself live with it
(``workers.FileResult``, ``pairs.ChunkRef``, ``split.CorpusIndex``).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class SourceFile:
    """One file of the repository (or one notebook's extracted cells)."""

    path: str  # relative to the repository root, POSIX separators
    kind: str  # "code" | "docs" (collect drops the rest)
    language: str  # "python", "markdown", "rst", "yaml", ... or "text"
    text: str = ""
    size: int = 0  # bytes on disk
    commit: str | None = None  # HEAD of the repository when collected, None outside git
    abs_path: str = ""  # where to read the bytes from; "" once text is loaded

    def with_text(self, text: str) -> SourceFile:
        return dataclasses.replace(self, text=text)


@dataclass
class Segment:
    """A line range [start, end] (1-based, inclusive) with its structural role."""

    start: int
    end: int
    chunk_type: str
    symbol: str = ""
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Chunk:
    """A structure-aware, token-bounded piece of one file."""

    id: str
    text: str
    path: str
    kind: str
    language: str
    start_line: int  # 1-based, inclusive
    end_line: int  # 1-based, inclusive
    symbol: str = ""  # qualified name for code ("Class.method"), heading path for docs
    chunk_type: str = ""  # "module" | "class" | "function" | "section" | "block"
    n_tokens: int = 0  # in the base model's own tokenizer, special tokens included
    commit: str | None = None
    # extra structure used by pair mining (docstring, heading, leading comment); not stored
    meta: dict = field(default_factory=dict, compare=False, repr=False)

    def to_row(self) -> dict:
        # the fields by name, not dataclasses.asdict: that deep-copies meta, and is most of the cost
        row = {name: getattr(self, name) for name in CHUNK_COLUMNS}
        row["commit"] = row["commit"] or ""
        return row


def chunk_id(path: str, start_line: int, end_line: int, text: str) -> str:
    """Stable id: path + span + content hash (same input, same id, across runs and machines)."""
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]
    return f"{path}:{start_line}-{end_line}:{digest}"


SETTINGS_FILE = "repotune.json"  # in a model folder: how its chunks are embedded and fused, the dataset it was trained on


def path_of_id(chunk_id: str) -> str | None:
    """The path inside an id made by ``chunk_id`` (``path:start-end:digest``), or None if it is not one."""
    parts = chunk_id.rsplit(":", 2)
    return parts[0] if len(parts) == 3 else None


@dataclass(frozen=True)
class Pair:
    """An (anchor, positive) training pair mined from the repository's structure."""

    anchor: str
    positive: str
    pair_type: str
    path: str
    anchor_kind: str  # "code" | "docs": the kind of the anchor's file
    positive_kind: str
    anchor_chunk_id: str
    positive_chunk_id: str
    kind: str = ""  # the kind of the positive's file, used for balance and stratification

    def to_row(self) -> dict:
        return {name: getattr(self, name) for name in PAIR_COLUMNS}


# the stored columns, in order: a Chunk's fields but its meta (dataset.CHUNK_FEATURES types them), a Pair's
CHUNK_COLUMNS = tuple(f.name for f in dataclasses.fields(Chunk) if f.name != "meta")
PAIR_COLUMNS = tuple(f.name for f in dataclasses.fields(Pair))
