"""stage: the rule loop that counts every drop, the stage timer, and stats that hold counts only."""

from __future__ import annotations

import json
import time

import pytest

from pipeline.stage import StageStats, apply_rules, first_reason, track_time


def _short(text: str) -> str | None:
    return "too_short" if len(text) < 3 else None


def _shouting(text: str) -> str | None:
    return "shouting" if text.isupper() else None


def test_apply_rules_keeps_what_no_rule_objects_to_and_counts_the_first_reason():
    stats = StageStats("demo")
    kept = list(apply_rules(["fine", "no", "LOUD", "OK"], [_short, _shouting], stats))
    assert kept == ["fine"]
    assert dict(stats) == {"kept": 1, "dropped_too_short": 2, "dropped_shouting": 1}  # "OK": the first rule's reason
    assert first_reason("OK", [_shouting, _short]) == "shouting" and first_reason("fine", [_short]) is None


def test_track_time_adds_the_blocks_wall_time_to_its_stage_even_when_it_raises():
    seconds = {"clean": 1.0}
    with track_time(seconds, "clean"):
        time.sleep(0.02)
    with pytest.raises(ValueError), track_time(seconds, "chunk"):
        time.sleep(0.01)
        raise ValueError("boom")
    assert seconds["clean"] >= 1.02 and seconds["chunk"] >= 0.01


def test_stats_are_written_sorted_and_refuse_anything_but_counts(tmp_path):
    stats = StageStats("history")
    stats["kept"] += 2
    stats.drop("too_short", "abc123")
    stats.write(tmp_path)
    assert json.loads((tmp_path / "history.json").read_text()) == {"dropped_too_short": 1, "kept": 2}
    stats["reason"] = "shallow clone: 1 commit(s)"  # a reader tabulates the stats as integers: refused
    with pytest.raises(TypeError, match="counts only"):
        stats.write(tmp_path)
