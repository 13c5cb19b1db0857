"""What every stage shares: rules that return None (keep) or a reason (drop), the loop that counts
them, and the timer of each stage's seconds.

Modelled on datatrove's filters: a rule only states its predicate; ``apply_rules`` (or
``first_reason`` for one record) counts ``kept`` and ``dropped_<reason>`` so nothing is dropped
silently, and the counts land in ``stats/<stage>.json`` and in the dataset card; each drop with what it dropped
(a path, a commit, a chunk id) lands in ``dropped/<stage>.jsonl``, as datatrove's exclusion writers keep what each
filter removed, so every drop can be audited. ``track_time``
adds a block's wall time to its stage, as datatrove's ``track_time`` does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

R = TypeVar("R")
Rule = Callable[[R], "str | None"]

log = logging.getLogger("repotune")


class StageStats(Counter):
    """Counts for one stage: ``kept``, ``dropped_<reason>`` and any other named tally."""

    def __init__(self, stage: str):
        super().__init__()
        self.stage = stage
        self.drops: list[tuple[str, str]] = []  # (what, reason) of each drop that names what it dropped

    def drop(self, reason: str, what: str = "") -> None:
        """Count a drop under ``reason``; ``what`` (a path, a commit, a chunk id: never a text, and a path that holds
        a secret only as redacted) is recorded for ``dropped/<stage>.jsonl``."""
        self[f"dropped_{reason}"] += 1
        if what:
            self.drops.append((what, reason))
        log.debug("%s: dropped %s (%s)", self.stage, what, reason)

    def merge(self, counts: dict[str, int], drops: Iterable[tuple[str, str]] = ()) -> None:
        """Add another process's counts and drops of this stage (a build worker's, for one file)."""
        self.update(counts)
        self.drops.extend(drops)

    def dropped(self) -> dict[str, int]:
        return {k[len("dropped_"):]: v for k, v in sorted(self.items()) if k.startswith("dropped_")}

    def write(self, stats_dir: Path) -> None:
        if wrong := {k: v for k, v in self.items() if not isinstance(v, int)}:  # readers tabulate them as integers
            raise TypeError(f"{self.stage} stats hold counts only, not {wrong}")
        stats_dir.mkdir(parents=True, exist_ok=True)
        (stats_dir / f"{self.stage}.json").write_text(json.dumps(dict(sorted(self.items())), indent=2) + "\n")

    def write_drops(self, dropped_dir: Path, redact_path: Callable[[str], str]) -> None:
        """``dropped/<stage>.jsonl``: one line per recorded drop, ``{"<what>": ..., "reason": ...}``, in the order they
        happened (the key says what the stage drops: a path, a commit or a chunk id). Paths are written through
        ``redact_path``: a file dropped before the secret scan read its name (excluded, binary, a key file) may carry a
        credential in it. (A chunk id's path is one the scan passed.)"""
        key = DROPPED_KEYS.get(self.stage, "what")
        dropped_dir.mkdir(parents=True, exist_ok=True)
        with open(dropped_dir / f"{self.stage}.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps({key: redact_path(what) if key == "path" else what, "reason": reason}, ensure_ascii=False)
                         + "\n" for what, reason in self.drops)


DROPPED_KEYS = {"collect": "path", "clean": "path", "secrets": "path", "chunk": "chunk_id", "history": "commit",
                "pairs": "chunk_id", "split": "chunk_id"}


def first_reason(record: R, rules: Iterable[Rule]) -> str | None:
    """The reason of the first rule that objects to ``record``, or None."""
    return next(filter(None, (rule(record) for rule in rules)), None)


def apply_rules(records: Iterable[R], rules: list[Rule], stats: StageStats, count_kept: bool = True) -> Iterator[R]:
    """Yield the records no rule objects to; count each drop under the first rule's reason."""
    for record in records:
        reason = first_reason(record, rules)
        if reason:
            stats.drop(reason, getattr(record, "path", ""))
            continue
        if count_kept:
            stats["kept"] += 1
        yield record


@contextlib.contextmanager
def track_time(seconds: dict[str, float], stage: str) -> Iterator[None]:
    """Add the wall time of the ``with`` block to ``seconds[stage]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - start
