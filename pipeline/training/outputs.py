"""outputs: what a training leaves besides the manifest: the model folder (with the settings search embeds by and the
dataset it was trained on) and the loss curve."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..config import Recipe
from ..records import SETTINGS_FILE
from ..rundir import RunDir, write_json


def save_model(run: RunDir, model, recipe: Recipe) -> None:
    """8. To a temporary folder, then rename, so a crash never leaves a model that looks complete; with the
    settings search embeds and fuses by (retrieval/search.py ``model_settings``) and the dataset it was trained on
    (``rundir.provenance_problem``)."""
    tmp = run.root / ".model.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(str(tmp))
    write_json(tmp / SETTINGS_FILE, {"context": recipe.chunk.context, "hybrid_alpha": recipe.evaluate.hybrid_alpha,
                                       "expand": recipe.history.expand, "dataset_hash": run.read_manifest().get("dataset_hash")})
    shutil.rmtree(run.model, ignore_errors=True)
    tmp.rename(run.model)


def plot_loss(histories: dict[str, list[dict]], path: Path) -> None:
    """Train and holdout loss against the step, one pair of curves per loss trained (two for a soup)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, log_history in histories.items():
        label = f"{name}: " if len(histories) > 1 else ""
        train = [(h["step"], h["loss"]) for h in log_history if "loss" in h]
        evals = [(h["step"], h["eval_loss"]) for h in log_history if "eval_loss" in h]
        if train:
            ax.plot(*zip(*train), label=f"{label}train loss", lw=1)
        if evals:
            ax.plot(*zip(*evals), "o-", label=f"{label}holdout loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss" if len(histories) > 1 else next(iter(histories)))
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
