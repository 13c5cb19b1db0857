"""The one loop every filtering stage shares: rules return None (keep) or a reason (drop).

Modelled on datatrove's filters: a rule only states its predicate; this loop counts ``kept`` and
``dropped_<reason>`` so nothing is dropped silently, and the counts land in ``stats/<stage>.json``
and in the dataset card.
"""

from __future__ import annotations

import json
import logging
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

    def drop(self, reason: str, what: str = "") -> None:
        self[f"dropped_{reason}"] += 1
        log.debug("%s: dropped %s (%s)", self.stage, what, reason)

    def dropped(self) -> dict[str, int]:
        return {k[len("dropped_"):]: v for k, v in sorted(self.items()) if k.startswith("dropped_")}

    def write(self, stats_dir: Path) -> None:
        if wrong := {k: v for k, v in self.items() if not isinstance(v, int)}:  # readers tabulate them as integers
            raise TypeError(f"{self.stage} stats hold counts only, not {wrong}")
        stats_dir.mkdir(parents=True, exist_ok=True)
        (stats_dir / f"{self.stage}.json").write_text(json.dumps(dict(sorted(self.items())), indent=2) + "\n")


def apply_rules(records: Iterable[R], rules: list[Rule], stats: StageStats, count_kept: bool = True) -> Iterator[R]:
    """Yield the records no rule objects to; count each drop under the first rule's reason."""
    for record in records:
        reason = next(filter(None, (rule(record) for rule in rules)), None)
        if reason:
            stats.drop(reason, getattr(record, "path", ""))
            continue
        if count_kept:
            stats["kept"] += 1
        yield record
