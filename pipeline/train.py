"""train: fine-tune the base model on the run's pairs, as the sentence-transformers examples do.

1. model  2. data  3. loss  4. arguments (+ time budget)  5. trainer  6. train (or resume)
7. merge with the base (WiSE-FT, train.merge_alpha)  8. save (to a temporary folder, then rename)
9. loss curve and manifest.
"""

from __future__ import annotations

import copy
import errno
import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from sentence_transformers.base.sampler import NoDuplicatesBatchSampler
from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback

from .config import MERGE_GRID, Recipe, TrainConfig, parse_duration
from .console import step_progress
from .dataset import load_corpus, load_pairs
from .models import ModelError, display_name, hub_id, resolve_model
from .rundir import RunDir, write_json
from .pairs import upsample_order
from .search import SETTINGS_FILE
from .split import dev_files, file_of
from .trainset import DEV_NDCG, TrainError, dev_evaluator, with_context, with_hard_negatives

log = logging.getLogger("repotune")


# --- length-aware batching --------------------------------------------------------------------------

class LengthGroupedNoDuplicatesBatchSampler(NoDuplicatesBatchSampler):
    """No duplicate texts in a batch (in-batch negatives stay true negatives), and texts of similar
    length together: shuffle, cut into mega-batches of 16 batches, sort each by length, then shuffle
    the batches. Less padding, so fewer wasted FLOPs per pair."""

    MEGA = 16

    def _iter_one_pass(self, get_sample_values, has_overlap):
        if not hasattr(self, "_lengths"):
            columns = [c for c in self.dataset.column_names if c in ("anchor", "positive")]
            self._lengths = np.sum([[len(t) for t in self.dataset[c]] for c in columns], axis=0)
        order = torch.randperm(len(self.dataset), generator=self.generator).numpy()
        mega = self.batch_size * self.MEGA
        for start in range(0, len(order), mega):
            block = sorted(order[start : start + mega].tolist(), key=lambda i: self._lengths[i])
            batches, pending = [], []
            batch, values = [], set()
            for index in block:
                for candidate in [*pending, index]:
                    sample = get_sample_values(candidate)
                    if has_overlap(sample, values):
                        if candidate not in pending:
                            pending.append(candidate)  # a duplicate waits for the next batch
                        continue
                    if candidate in pending:
                        pending.remove(candidate)
                    batch.append(candidate)
                    values |= set(sample)
                    if len(batch) == self.batch_size:
                        batches.append(batch)
                        batch, values = [], set()
            if batch and not self.drop_last:
                batches.append(batch)
            for i in torch.randperm(len(batches), generator=self.generator).tolist():
                yield batches[i]


# --- time budget -------------------------------------------------------------------------------------

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
            cap = _from_rank0(min(max(cap, state.global_step), state.max_steps))  # every process stops at one step
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


def _from_rank0(value):
    """``value`` as rank 0 has it, in every process of a torchrun launch (itself in a single process)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]
    return value


# --- the base beside the model: GIST's guide, WiSE-FT's other end ------------------------------------

def frozen_base(path: str, config: TrainConfig, local_only: bool):
    """The base model, frozen and in eval mode (no dropout): the guide of ``train.loss: gist`` and the base that
    ``train.merge_alpha`` merges the tuned weights with. Its parameters are left out of the optimizer."""
    from sentence_transformers import SentenceTransformer, SentenceTransformerModelCardData

    card = SentenceTransformerModelCardData(local_files_only=local_only)
    base = SentenceTransformer(path, device="cpu", local_files_only=local_only, model_card_data=card)  # the trainer moves it with the loss
    base.max_seq_length = config.max_seq_length  # the model's tokens, so GIST need not tokenise a second time
    card.base_model = hub_id(config.base_model) or display_name(config.base_model)  # how the model card names the guide
    return base.eval().requires_grad_(False)


def merged_state(tuned: dict, base: dict, alpha: float) -> dict:
    """WiSE-FT, parameter by parameter: alpha * tuned + (1 - alpha) * base (integer buffers such as position
    ids are the tuned model's; they are the base's too)."""
    if alpha == 1.0:
        return tuned
    return {name: alpha * t + (1 - alpha) * base[name].to(t.device) if t.is_floating_point() else t for name, t in tuned.items()}


@torch.no_grad()
def merge_with_base(model, base, alpha: float | str, evaluator=None) -> dict:
    """Merge ``model``'s final weights with ``base``'s in place, at ``alpha`` or, for ``auto``, at the value of
    MERGE_GRID that scores best on the dev split (a tie goes to the larger alpha: a merge must earn its place).
    With a dev split, the model card's dev metrics become those of the merged weights; its training logs stay
    those of training. Returns the manifest's entries: the alpha used, and the dev nDCG@10 per alpha tried."""
    if alpha == 1.0:
        return {"merge_alpha": 1.0}
    card = model.model_card_data
    logs = copy.deepcopy(card.training_logs)  # the evaluator logs each call as a step: these are not steps
    tuned = {name: t.detach().clone() for name, t in model.state_dict().items()}
    weights = base.state_dict()
    candidates, scores, metrics = MERGE_GRID if alpha == "auto" else (alpha,), {}, {}
    for candidate in candidates:
        model.load_state_dict(merged_state(tuned, weights, candidate))
        if evaluator is not None:
            metrics[candidate] = evaluator(model)
            scores[candidate] = metrics[candidate][DEV_NDCG]
    chosen = max(scores, key=lambda a: (scores[a], a)) if alpha == "auto" else alpha
    if chosen != candidates[-1]:
        model.load_state_dict(merged_state(tuned, weights, chosen))
    card.training_logs = logs
    if evaluator is not None:  # the card's evaluation is that of the weights it is saved with
        card.eval_results_dict[evaluator] = metrics[chosen]
    if chosen != 1.0:
        card.model_name += f", merged with its base at alpha {chosen:g} (WiSE-FT)"
    log.info("WiSE-FT: saved weights are %g x tuned + %g x base%s", chosen, 1 - chosen,
             "; dev nDCG@10 " + ", ".join(f"{a:g}: {v:.4f}" for a, v in scores.items()) if scores else "")
    return {"merge_alpha": chosen} | ({"merge_dev_ndcg@10": {f"{a:g}": v for a, v in scores.items()}} if scores else {})


# --- training ---------------------------------------------------------------------------------------

def _precision(config: TrainConfig) -> dict:
    if config.precision == "fp32" or (config.precision == "auto" and not torch.cuda.is_available()):
        return {}
    if config.precision == "bf16" or (config.precision == "auto" and torch.cuda.is_bf16_supported()):
        return {"bf16": True}
    return {"fp16": True}


def _distributed_args() -> dict:
    """Trainer arguments for several processes: split each global batch between them (so the no-duplicates
    sampler sees the whole batch), and on CPUs accelerate's multi-CPU mode over gloo."""
    args = {"accelerator_config": {"split_batches": True}}
    if not torch.cuda.is_available():
        args |= {"use_cpu": True, "ddp_backend": "gloo"}
    return args


def _barrier() -> None:
    """Wait for every process of a torchrun launch (a no-op in a single process)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


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


def _finished(run: RunDir, recipe: Recipe) -> dict | None:
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


def _check_resume(run: RunDir, recipe: Recipe, resume: bool) -> None:
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


def train(run_dir: str | Path, recipe: Recipe | None = None, resume: bool = False) -> dict:
    """Fine-tune on ``run_dir``'s train pairs; save ``run_dir/model``; return the manifest."""
    from sentence_transformers import (SentenceTransformer, SentenceTransformerModelCardData,
                                       SentenceTransformerTrainer, SentenceTransformerTrainingArguments)
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import (CachedGISTEmbedLoss, CachedMultipleNegativesRankingLoss,
                                                                   GISTEmbedLoss, MultipleNegativesRankingLoss)

    run = RunDir(run_dir)
    recipe = recipe or run.read_recipe()
    config = recipe.train
    if resume and (done := _finished(run, recipe)) is not None:
        log.info("training of %s finished at step %d already: nothing to resume", run.root, done["train"]["steps"])
        return done
    manifest = run.read_manifest()
    started = time.perf_counter()

    # 1. model: the base, with the card data sentence-transformers fills in while training
    base = resolve_model(config.base_model)
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    card_data = SentenceTransformerModelCardData(
        language=["en", "code"],
        license=manifest.get("license", "other"),
        model_name=f"{display_name(config.base_model)} tuned by repotune on {manifest['source']['name']}",
        train_datasets=[{"name": f"repotune pairs: {manifest['source']['name']}"}],
        eval_datasets=[{"name": f"repotune pairs: {manifest['source']['name']} (holdout)"}],
        local_files_only=offline or os.path.isdir(base),  # a local base has nothing to look up on the Hub
    )
    try:
        model = SentenceTransformer(base, model_card_data=card_data, local_files_only=offline or os.path.isdir(base))
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot load base model {config.base_model!r}: {err}. Set train.base_model to a "
                         "sentence-transformers folder, a Hub id, or packaged:all-MiniLM-L6-v2") from err
    model.max_seq_length = config.max_seq_length
    if card_data.local_files_only and hub_id(config.base_model):
        card_data.base_model = hub_id(config.base_model)  # what sentence-transformers would look up online
    # a frozen copy of the base: the guide of GIST, the other end of the WiSE-FT merge
    base_copy = frozen_base(base, config, card_data.local_files_only) if config.loss == "gist" or config.merge_alpha != 1.0 else None

    # 2. data: anchor, positive first, as the in-batch loss expects
    pairs = load_pairs(run)
    corpus = load_corpus(run) if recipe.chunk.context or recipe.pairs.hard_negatives else None
    if recipe.chunk.context:  # positives embedded as search will embed them: under their path and symbol
        pairs = with_context(pairs, corpus)
    train_ds, seen, evaluator = pairs["train"], {}, None
    if config.dev_fraction:  # model selection on a dev split of training files (never the holdout)
        dev = dev_files(train_ds["path"], config.dev_fraction, recipe.split.seed)
        dev_ds = train_ds.filter(lambda row: file_of(row["path"]) in dev, keep_in_memory=True)
        train_ds = train_ds.filter(lambda row: file_of(row["path"]) not in dev, keep_in_memory=True)
        evaluator = dev_evaluator(dev_ds)
        seen["dev_pairs"] = len(dev_ds)
    if recipe.pairs.balance == "upsample" and recipe.pairs.balance_code_share is not None:
        # every mined pair kept; the minority kind repeated until code is the share the recipe asks
        train_ds = train_ds.select(upsample_order(train_ds["kind"], recipe.pairs.balance_code_share, recipe.split.seed), keep_in_memory=True)
    seen["pairs_seen"] = len(train_ds)
    seen["code_share_seen"] = round(sum(k == "code" for k in train_ds["kind"]) / max(1, len(train_ds)), 4)
    columns = ["anchor", "positive"]
    if recipe.pairs.hard_negatives:
        train_ds, seen["hard_negatives_mined"] = with_hard_negatives(train_ds, model, corpus, recipe.chunk.context, recipe.split.seed)
        columns.append("negative")
    train_ds = train_ds.select_columns(columns)
    eval_ds = pairs["holdout"].select_columns(["anchor", "positive"]) if len(pairs["holdout"]) >= 2 else None
    if len(train_ds) < config.batch_size:
        raise TrainError(f"{len(train_ds)} training pairs cannot fill one batch of {config.batch_size}: "
                         f"lower train.batch_size (e.g. --set train.batch_size={max(2, len(train_ds) // 2)}) or mine more pairs")

    # 3. loss: in-batch negatives; the cached variant keeps memory flat for large batches. GIST masks the in-batch
    # candidates its guide (the frozen base) rates above the positive: likely true neighbours, not negatives.
    # Under torchrun the embeddings are gathered across processes, so the negatives stay the whole global batch
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and config.batch_size % world:
        raise TrainError(f"train.batch_size={config.batch_size} (the global batch) must divide by the {world} processes")
    gather = {"gather_across_devices": True} if world > 1 else {}
    cached = {"mini_batch_size": config.mini_batch_size} if config.cached_loss else {}
    if config.loss == "gist":
        loss = (CachedGISTEmbedLoss if config.cached_loss else GISTEmbedLoss)(model, guide=base_copy, **cached, **gather)
    else:
        loss = (CachedMultipleNegativesRankingLoss if config.cached_loss else MultipleNegativesRankingLoss)(model, **cached, **gather)

    # 4. arguments
    args = SentenceTransformerTrainingArguments(
        output_dir=str(run.checkpoints),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_ratio=config.warmup_ratio,
        batch_sampler=LengthGroupedNoDuplicatesBatchSampler if config.length_aware else BatchSamplers.NO_DUPLICATES,
        eval_strategy="steps" if eval_ds is not None or evaluator is not None else "no",
        # with model selection, score the dev split at every checkpoint and keep the best one
        eval_steps=config.save_steps if evaluator is not None else config.eval_steps,
        load_best_model_at_end=evaluator is not None,
        metric_for_best_model=f"eval_{DEV_NDCG}" if evaluator is not None else None,
        greater_is_better=True if evaluator is not None else None,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        logging_steps=1,
        seed=config.seed,
        data_seed=config.seed,
        report_to="none",
        disable_tqdm=False,
        dataloader_drop_last=False,
        dataloader_num_workers=config.dataloader_workers,
        dataloader_persistent_workers=config.dataloader_workers > 0,
        dataloader_pin_memory=torch.cuda.is_available(),  # pinned host memory only helps a copy to a GPU
        # several processes (torchrun): the batch sampler makes each global batch of train.batch_size without
        # duplicates, and accelerate splits it between the processes (each gets batch_size / processes)
        **(_distributed_args() if world > 1 else {}),
        **_precision(config),
    )
    if world > 1:
        _ = args.device  # sets up the process group (torchrun), so that the barrier below has one
    if int(os.environ.get("RANK", "0")) == 0:
        _check_resume(run, recipe, resume)
    _barrier()  # the other processes wait until rank 0 has set up checkpoints/
    budget = TimeBudget(parse_duration(config.time_budget) if config.time_budget else None, run.checkpoints / "budget.json")

    # 5. trainer
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                                         loss=loss, evaluator=evaluator, callbacks=[budget, WallClockCheckpoints(config.save_minutes)])
    trainer.remove_callback(ProgressCallback)  # its bar prints every log dict: repotune's own bar instead
    trainer.add_callback(step_progress())

    # 6. train, or resume from the newest checkpoint (Colab cut-offs, kill -9)
    checkpoint = latest_checkpoint(run) if resume else None
    if resume and checkpoint is None:
        log.warning("no checkpoint in %s: training from the start", run.checkpoints)
    try:
        output = trainer.train(resume_from_checkpoint=checkpoint)
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise TrainError(f"disk full while writing checkpoints to {run.checkpoints}: free space, or lower "
                             f"train.save_total_limit / raise train.save_steps") from err
        raise

    if not trainer.is_world_process_zero():  # one writer: rank 0 saves model, card, plots and manifest
        return manifest

    # 7. WiSE-FT: the final (or best) weights merged with the base's; a resumed run merges the same weights
    seen |= merge_with_base(model, base_copy, config.merge_alpha, evaluator)

    # 8. save: to a temporary folder, then rename, so a crash never leaves a model that looks complete
    tmp = run.root / ".model.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(str(tmp))
    write_json(tmp / SETTINGS_FILE, {"context": recipe.chunk.context, "hybrid_alpha": recipe.evaluate.hybrid_alpha,
                                       "expand": recipe.history.expand})
    shutil.rmtree(run.model, ignore_errors=True)
    tmp.rename(run.model)

    # 9. loss curve and manifest; throughput counts the trainer's own runtime (no load or save)
    runtime = float(output.metrics.get("train_runtime", 0.0)) or float("nan")
    steps_run = trainer.state.global_step - (int(checkpoint.rsplit("-", 1)[-1]) if checkpoint else 0)
    history = [h for h in trainer.state.log_history if "loss" in h]
    final_loss = float(np.mean([h["loss"] for h in history[-10:]])) if history else float("nan")
    write_json(run.root / "train_log.json", trainer.state.log_history)
    plot_loss(trainer.state.log_history, run.plots / "loss.png", type(loss).__name__)
    if evaluator is not None:
        seen["best_checkpoint"] = Path(trainer.state.best_model_checkpoint or "").name or None
        seen["best_dev_ndcg@10"] = trainer.state.best_metric
    manifest = run.update_manifest(
        train={"base_model": config.base_model, "loss": type(loss).__name__, "steps": trainer.state.global_step, "max_steps_planned": trainer.state.max_steps,
               "budget_cap": budget.cap, "final_train_loss": final_loss, "train_pairs": len(train_ds),
               "precision": next(iter(_precision(config)), "fp32"), "device": str(model.device),
               "seconds": round(time.perf_counter() - started, 1), "train_runtime": round(runtime, 2),
               "pairs_per_second": round(steps_run * config.batch_size / runtime, 2), **seen},
        model_hash=run.model_hash(),
    )
    write_json(run.checkpoints / FINISHED, {"steps": trainer.state.global_step, "model_hash": manifest["model_hash"]})
    return manifest


def plot_loss(log_history: list[dict], path: Path, loss_name: str = "MultipleNegativesRankingLoss") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(h["step"], h["loss"]) for h in log_history if "loss" in h]
    evals = [(h["step"], h["eval_loss"]) for h in log_history if "eval_loss" in h]
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if train:
        ax.plot(*zip(*train), label="train loss", lw=1)
    if evals:
        ax.plot(*zip(*evals), "o-", label="holdout loss")
    ax.set_xlabel("step")
    ax.set_ylabel(loss_name)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
