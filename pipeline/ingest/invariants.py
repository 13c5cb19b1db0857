"""The chunk invariants, as one reusable checker: the unit tests apply it to the chunker on arbitrary
text (Hypothesis), and the governance gate's ``chunk_invariants`` check applies it to a run's corpus.

``check_chunks`` returns violation messages (an empty list means every invariant holds) rather than
raising, so a caller can report all of them at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .chunk import header_reserve

_FIELDS = ("id", "text", "path", "start_line", "end_line", "n_tokens", "symbol")


def _fields(chunk: Any) -> dict:
    """A Chunk record or a corpus row (a mapping with the same column names)."""
    if isinstance(chunk, Mapping):
        return {name: chunk.get(name) for name in _FIELDS}
    return {name: getattr(chunk, name, None) for name in _FIELDS}


def check_chunks(chunks: Iterable[Any], text: str | None, max_tokens: int, counter, context: bool = False) -> list[str]:
    """Violations of the chunk invariants by the chunks of one file, in the order they were produced.

    ``counter`` is a ``pipeline.ingest.chunk.TokenCounter`` for the base model's tokenizer. Always checked:
    every chunk is non-empty, within ``max_tokens`` in the model's own tokens (special tokens
    included, recounted here, not trusted from ``n_tokens``), has a valid 1-based span, and a unique
    id; chunks come in source order (``start_line`` non-decreasing). With the file's (normalised)
    ``text`` also: each chunk's text comes from its span, and every non-blank line of the file lies
    in some chunk's span. Pass ``text=None`` for a run's stored corpus, where ``chunk.min_chars``
    has already dropped short pieces, so coverage no longer holds. With ``context`` (``chunk.context``),
    the limit holds for the text together with the room its header needs (``chunk.header_reserve()``).
    """
    rows = [_fields(c) for c in chunks]
    problems: list[str] = []
    lines = text.split("\n") if text is not None else None
    seen: set[str] = set()
    previous_start = 0
    for i, c in enumerate(rows):
        where = f"chunk {i} ({c['id']})"
        body = c["text"] or ""
        start, end = c["start_line"], c["end_line"]
        if not body.strip():
            problems.append(f"{where}: empty text")
        n = counter.total(body)
        reserve = header_reserve(counter, c["path"] or "", c["symbol"] or "", max_tokens) if context else 0
        if n + reserve > max_tokens:
            problems.append(f"{where}: {n} tokens" + (f" and {reserve} for its header" if reserve else "")
                            + f", over the limit of {max_tokens}")
        if c["n_tokens"] is not None and c["n_tokens"] != n:
            problems.append(f"{where}: records n_tokens={c['n_tokens']} but the tokenizer counts {n}")
        if c["id"] in seen:
            problems.append(f"{where}: duplicate id")
        seen.add(c["id"])
        if not (isinstance(start, int) and isinstance(end, int) and 1 <= start <= end):
            problems.append(f"{where}: invalid span {start}-{end}")
            continue
        if start < previous_start:
            problems.append(f"{where}: starts at line {start}, before the previous chunk's line {previous_start}")
        previous_start = start
        if lines is not None:
            if end > len(lines):
                problems.append(f"{where}: span {start}-{end} runs past the file's {len(lines)} lines")
            elif body not in "\n".join(lines[start - 1 : end]):
                problems.append(f"{where}: text is not taken from lines {start}-{end}")
    if lines is not None:
        covered = set()
        for c in rows:
            if isinstance(c["start_line"], int) and isinstance(c["end_line"], int):
                covered.update(range(c["start_line"], c["end_line"] + 1))
        missing = [n for n, line in enumerate(lines, start=1) if line.strip() and n not in covered]
        if missing:
            problems.append(f"{len(missing)} non-blank line(s) in no chunk, first: line {missing[0]}")
    return problems
