"""callbacks: the trainer callbacks for short or cut-off sessions: the time budget (``train.time_budget``)
and wall-clock checkpoints (``train.save_minutes``)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from transformers import TrainerCallback

from .distributed import from_rank0

log = logging.getLogger("repotune")


class TimeBudget(TrainerCallback):
    """Measure the first steps, then cap the step count so training ends inside the budget.

    The cap is written to ``checkpoints/budget.json`` so a resumed run stops at the same step (and
    reaches the same weights) whatever the speed of the machine it resumes on.
    """

    def __init__(self, budget_s: float | None, path: Path, warmup_steps: int = 3):
        self.budget_s = budget_s
        self.path = path
        self.warmup_steps = warmup_steps
        self.cap = json.loads(path.read_text())["max_steps"] if path.is_file() else None
        self.t0 = None

    def on_train_begin(self, args, state, control, **kw):
        self.t0, self.step0 = time.perf_counter(), state.global_step

    def on_step_end(self, args, state, control, **kw):
        done = state.global_step - self.step0
        if self.cap is None and self.budget_s and done == self.warmup_steps:
            per_step = (time.perf_counter() - self.t0) / done
            cap = state.global_step + int((self.budget_s - (time.perf_counter() - self.t0)) / per_step)
            cap = from_rank0(min(max(cap, state.global_step), state.max_steps))  # every process stops at one step
            self.cap = cap
            if cap < state.max_steps:
                log.info("time budget %ss: %.2f s/step measured, stopping at step %d of %d", int(self.budget_s), per_step, self.cap, state.max_steps)
            if state.is_world_process_zero:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.path.write_text(json.dumps({"max_steps": self.cap, "seconds_per_step": per_step}))
        if self.cap is not None and state.global_step >= self.cap and state.global_step < state.max_steps:
            control.should_training_stop = True
            control.should_save = True


class WallClockCheckpoints(TrainerCallback):
    """A checkpoint at least every ``minutes`` of wall time besides every ``save_steps``: a session cut off
    before the first ``save_steps`` (a small repository, a slow GPU) still leaves something to resume from.
    Saving does not touch the training's random state, so a resumed run reaches the same weights."""

    def __init__(self, minutes: float | None):
        self.seconds = minutes * 60 if minutes else None
        self.last = time.monotonic()

    def on_step_end(self, args, state, control, **kw):
        if self.seconds and time.monotonic() - self.last >= self.seconds:
            control.should_save = True

    def on_save(self, args, state, control, **kw):
        self.last = time.monotonic()
