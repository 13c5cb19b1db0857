"""resume: checkpoints a cut-off training resumes from (Colab cut-offs, ``kill -9``), a soup's finished
ingredients, and the recipe stamp that makes a resumed run reach the same weights as an uninterrupted one,
or refuse."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch

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


def latest_checkpoint(folder: Path) -> str | None:
    """The newest complete checkpoint in ``folder`` (a run's ``checkpoints/``, or a soup ingredient's folder in
    it); incomplete ones (a cut-off while saving) are removed, each with a warning."""
    found = sorted((p for p in folder.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
                   key=lambda p: int(p.name.split("-")[-1]))
    complete = [p for p in found if _complete(p)]
    for p in found:
        if p not in complete:
            log.warning("checkpoint %s is incomplete (cut off while it was written): removed, resuming from %s",
                        p.name, complete[-1].name if complete else "the start")
            shutil.rmtree(p, ignore_errors=True)
    return str(complete[-1]) if complete else None


def save_ingredient(folder: Path, state: dict, record: dict) -> None:
    """A soup's finished ingredient (``train.loss: soup``): its weights and training record replace its
    checkpoints, so a soup cut off later resumes without training it again. The exact tensors are kept
    (``torch.save``), so the resumed soup's weights stay bit-identical."""
    torch.save(state, folder / "final.tmp")
    (folder / "final.json").write_text(json.dumps(record))
    (folder / "final.tmp").rename(folder / "final.pt")  # written last: a cut-off before it leaves no ingredient
    for old in folder.glob("checkpoint-*"):
        shutil.rmtree(old, ignore_errors=True)


def finished_ingredient(folder: Path) -> tuple[dict, dict] | None:
    """The weights and record ``save_ingredient`` left in ``folder``, or None where it finished no training."""
    if not (folder / "final.pt").is_file():
        return None
    return torch.load(folder / "final.pt", map_location="cpu"), json.loads((folder / "final.json").read_text())


FINISHED = "finished.json"  # in checkpoints/: the step and model hash a completed training ended with


def finished_manifest(run: RunDir, recipe: Recipe) -> dict | None:
    """The run's manifest when its training already ran to the end with this recipe and its model is untouched:
    resuming it then trains nothing (a second *Run all* must not add a step and change the model)."""
    try:
        done = json.loads((run.checkpoints / FINISHED).read_text())
        started = _started_stamp(run)
    except (OSError, ValueError):
        return None
    if started != _stamp(run, recipe) or not (run.model / "modules.json").is_file() or run.model_hash() != done.get("model_hash"):
        return None
    return run.read_manifest()


def _stamp(run: RunDir, recipe: Recipe) -> dict:
    """What decides the weights training reaches (not how long it may take or how often it saves): the recipe's
    training keys, and the dataset it trains on (a rebuilt run directory holds other pairs)."""
    current = {k: v for k, v in vars(recipe.train).items() if k not in ("time_budget", "save_minutes")}
    # what training sees also depends on these
    return current | {"chunk.context": recipe.chunk.context, "pairs.balance": recipe.pairs.balance,
                      "pairs.hard_negatives": recipe.pairs.hard_negatives,
                      "dataset_hash": run.read_manifest().get("dataset_hash")}


def _started_stamp(run: RunDir) -> dict:
    """The stamp training started with. A key that the repotune which wrote it did not know yet (train.loss,
    train.merge_alpha, the dataset hash) is at today's default (the dataset: the run's), which is what that version
    did: such a run still resumes."""
    return _stamp(run, Recipe()) | json.loads((run.checkpoints / "train_recipe.json").read_text())


def held_training(run: RunDir) -> str | None:
    """What ``run``'s checkpoints/ holds that a fresh start would delete ("a finished training", "checkpoints up to
    step 40", "a finished soup ingredient"), or None when it holds nothing to lose."""
    folder = run.checkpoints
    if (folder / FINISHED).is_file():
        return "a finished training"
    steps = [int(p.name.split("-")[-1]) for p in folder.rglob("checkpoint-*") if p.name.split("-")[-1].isdigit()]
    if steps:
        return f"checkpoints up to step {max(steps)}"
    if any(folder.glob("*/final.pt")):
        return "a finished soup ingredient"
    return None


def check_resume(run: RunDir, recipe: Recipe, resume: bool, fresh: bool = False) -> None:
    """Checkpoints are never lost by accident: a resumed run must use the recipe and dataset it started with; a
    run directory that holds a training starts afresh only when asked (``fresh``), and says what it deletes."""
    stamp = run.checkpoints / "train_recipe.json"
    current = _stamp(run, recipe)
    held = held_training(run)
    fresh_hint = f"`repotune train {run.root} --fresh` deletes {run.checkpoints} and trains from the start"
    if held and not (resume or fresh):
        raise TrainError(f"{run.checkpoints} holds {held}: continue it with `repotune train {run.root} --resume`, "
                         f"or {fresh_hint}")
    if resume and not fresh and held and stamp.is_file():
        started = _started_stamp(run)
        changed = {k: (started.get(k), v) for k, v in current.items() if started.get(k) != v}
        if changed:
            detail = ", ".join(_change(k, a, b) for k, (a, b) in changed.items())
            raise TrainError(f"cannot resume {run.root}: {detail} since training started. Resume with the original "
                             f"recipe and dataset, or {fresh_hint}")
    if fresh or not held:
        if held:
            log.info("--fresh: deleting %s (%s)", run.checkpoints, held)
        shutil.rmtree(run.checkpoints, ignore_errors=True)
    run.checkpoints.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(current, indent=2))


def _change(key: str, before, now) -> str:
    if key == "dataset_hash":
        return f"the dataset was rebuilt ({str(before)[:12]} -> {str(now)[:12]})"
    return f"the recipe changed ({key if '.' in key else 'train.' + key}: {before!r} -> {now!r})"
