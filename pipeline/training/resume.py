"""resume: checkpoints a cut-off training resumes from (Colab cut-offs, ``kill -9``), and the recipe
stamp that makes a resumed run reach the same weights as an uninterrupted one, or refuse."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from ..config import Recipe
from ..rundir import RunDir
from .trainset import TrainError

log = logging.getLogger("repotune")


def _complete(checkpoint: Path) -> bool:
    """Whether transformers finished writing ``checkpoint``: it writes trainer_state.json last, so a folder
    cut off mid-write lacks it (or holds it half-written)."""
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return state.get("global_step") == int(checkpoint.name.split("-")[-1]) and (checkpoint / "optimizer.pt").is_file()


def latest_checkpoint(run: RunDir) -> str | None:
    """The newest complete checkpoint; incomplete ones (a cut-off while saving) are removed, each with a warning."""
    found = sorted((p for p in run.checkpoints.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
                   key=lambda p: int(p.name.split("-")[-1]))
    complete = [p for p in found if _complete(p)]
    for p in found:
        if p not in complete:
            log.warning("checkpoint %s is incomplete (cut off while it was written): removed, resuming from %s",
                        p.name, complete[-1].name if complete else "the start")
            shutil.rmtree(p, ignore_errors=True)
    return str(complete[-1]) if complete else None


FINISHED = "finished.json"  # in checkpoints/: the step and model hash a completed training ended with


def finished_manifest(run: RunDir, recipe: Recipe) -> dict | None:
    """The run's manifest when its training already ran to the end with this recipe and its model is untouched:
    resuming it then trains nothing (a second *Run all* must not add a step and change the model)."""
    try:
        done = json.loads((run.checkpoints / FINISHED).read_text())
        started = _started_stamp(run)
    except (OSError, ValueError):
        return None
    if started != _stamp(recipe) or not (run.model / "modules.json").is_file() or run.model_hash() != done.get("model_hash"):
        return None
    return run.read_manifest()


def _stamp(recipe: Recipe) -> dict:
    """What decides the weights training reaches (not how long it may take or how often it saves)."""
    current = {k: v for k, v in vars(recipe.train).items() if k not in ("time_budget", "save_minutes")}
    # what training sees also depends on these
    return current | {"chunk.context": recipe.chunk.context, "pairs.balance": recipe.pairs.balance,
                      "pairs.hard_negatives": recipe.pairs.hard_negatives}


def _started_stamp(run: RunDir) -> dict:
    """The stamp training started with. A key that the repotune which wrote it did not know yet (train.loss,
    train.merge_alpha) is at today's default, which is what that version did: such a run still resumes."""
    return _stamp(Recipe()) | json.loads((run.checkpoints / "train_recipe.json").read_text())


def check_resume(run: RunDir, recipe: Recipe, resume: bool) -> None:
    """A resumed run must use the recipe it started with; a fresh run starts from clean checkpoints."""
    stamp = run.checkpoints / "train_recipe.json"
    current = _stamp(recipe)
    if resume and stamp.is_file():
        started = _started_stamp(run)
        changed = {k: (started.get(k), v) for k, v in current.items() if started.get(k) != v}
        if changed:
            detail = ", ".join(f"{k if '.' in k else 'train.' + k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
            raise TrainError(f"cannot resume {run.root}: the recipe changed since training started ({detail}). "
                             f"Resume with the original recipe, or train afresh without --resume.")
    if not resume:
        shutil.rmtree(run.checkpoints, ignore_errors=True)
    run.checkpoints.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(current, indent=2))
