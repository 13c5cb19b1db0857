"""train: fine-tune the base model on the run's pairs, as the sentence-transformers examples do.

1. model  2. data  3. loss  4. arguments (+ time budget)  5. trainer  6. train (or resume); for
``train.loss: soup``, 3-6 once per ingredient (MNRL, then GIST, each from the base), then their weights
averaged  7. merge with the base (WiSE-FT, train.merge_alpha)  8. save (to a temporary folder, then rename)
9. loss curve and manifest. The rooms beside it, as sentence-transformers keeps them apart from its
trainer: ``sampler`` (length-grouped batches), ``callbacks`` (time budget, wall-clock checkpoints),
``merge`` (the frozen base: GIST's guide, WiSE-FT), ``resume`` (checkpoints and the recipe stamp),
``distributed`` (torchrun), ``trainset`` (what training sees besides the pairs), ``card`` (what the model card says
of the training), ``outputs`` (the model folder and the loss curve).
"""

from __future__ import annotations

import errno
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers.trainer_callback import ProgressCallback

from ..common import file_of, hub_offline, is_rank0
from ..config import Recipe, TrainConfig, parse_duration
from ..console import step_progress
from ..dataset import load_corpus, load_pairs
from ..mining.pairs import upsample_order
from ..mining.split import dev_files
from ..models import ModelError, display_name, hub_id, resolve_model
from ..rundir import RunDir, write_json
from .callbacks import TimeBudget, WallClockCheckpoints
from .card import describe_soup, widget_pairs
from .distributed import barrier, distributed_args
from .merge import frozen_base, merge_with_base, merged_state
from .outputs import plot_loss, save_model
from .resume import FINISHED, check_resume, finished_ingredient, finished_manifest, latest_checkpoint, save_ingredient
from .sampler import LengthGroupedNoDuplicatesBatchSampler
from .trainset import DEV_NDCG, TrainError, dev_evaluator, with_context, with_hard_negatives

log = logging.getLogger("repotune")


def _precision(config: TrainConfig) -> dict:
    """The trainer's precision arguments (the first key names it in the manifest). bf16 on a CPU is the trainer's CPU
    autocast, which it allows only with ``use_cpu``."""
    if config.precision == "fp32" or (config.precision == "auto" and not torch.cuda.is_available()):
        return {}
    if not torch.cuda.is_available():
        if config.precision == "fp16":
            raise TrainError("train.precision fp16 needs a GPU: use bf16 or fp32 on a CPU")
        return {"bf16": True, "use_cpu": True}
    if config.precision == "bf16" or (config.precision == "auto" and torch.cuda.is_bf16_supported()):
        return {"bf16": True}
    return {"fp16": True}


@dataclass
class TrainingData:
    """What the trainer is given: the training pairs (columns as the loss reads them), the holdout pairs for
    its eval loss, the dev split's evaluator (model selection), and what training saw, for the manifest."""

    train: object
    holdout: object | None
    evaluator: object | None
    seen: dict


def load_base(config: TrainConfig, manifest: dict, frozen: bool = True):
    """1. The base model, with the card data sentence-transformers fills in while training; and a frozen
    copy of it where GIST needs a guide or WiSE-FT a base to merge with (else None; always None without
    ``frozen``: a soup's second ingredient shares the first one's)."""
    from sentence_transformers import SentenceTransformer, SentenceTransformerModelCardData

    base = resolve_model(config.base_model)
    offline = hub_offline()
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
    needs_base = frozen and (config.loss in ("gist", "soup") or config.merge_alpha != 1.0)
    return model, frozen_base(base, config, card_data.local_files_only) if needs_base else None


def training_data(run: RunDir, recipe: Recipe, model) -> TrainingData:
    """2. The run's pairs as training sees them: anchor, positive first, as the in-batch loss expects."""
    config = recipe.train
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
        mining = time.perf_counter()
        train_ds, seen["hard_negatives_mined"] = with_hard_negatives(train_ds, model, corpus, recipe.chunk.context, recipe.split.seed,
                                                                     run.root / "index")
        seen["hard_negatives_seconds"] = round(time.perf_counter() - mining, 1)  # the base model's corpus pass, mostly
        columns.append("negative")
    train_ds = train_ds.select_columns(columns)
    holdout = pairs["holdout"].select_columns(["anchor", "positive"]) if len(pairs["holdout"]) >= 2 else None
    if len(train_ds) < config.batch_size:
        raise TrainError(f"{len(train_ds)} training pairs cannot fill one batch of {config.batch_size} ({run.drops('pairs', 'split')}): "
                         f"lower train.batch_size (e.g. --set train.batch_size={max(2, len(train_ds) // 2)}) or mine more pairs"
                         f"{_BALANCE_HINT if 'balance=' in run.drops('pairs') else ''}")
    return TrainingData(train_ds, holdout, evaluator, seen)


def make_loss(config: TrainConfig, name: str, model, guide, world: int):
    """3. In-batch negatives; the cached variant keeps memory flat for large batches. GIST masks the in-batch
    candidates its guide (the frozen base) rates above the positive: likely true neighbours, not negatives.
    Under torchrun the embeddings are gathered across processes, so the negatives stay the whole global batch."""
    from sentence_transformers.sentence_transformer.losses import (
        CachedGISTEmbedLoss,
        CachedMultipleNegativesRankingLoss,
        GISTEmbedLoss,
        MultipleNegativesRankingLoss,
    )

    if world > 1 and config.batch_size % world:
        raise TrainError(f"train.batch_size={config.batch_size} (the global batch) must divide by the {world} processes")
    gather = {"gather_across_devices": True} if world > 1 else {}
    cached = {"mini_batch_size": config.mini_batch_size} if config.cached_loss else {}
    if name == "gist":
        temperature = {} if config.temperature is None else {"temperature": config.temperature}
        sides = {} if config.gist_same_side else {"contrast_anchors": False, "contrast_positives": False}
        return (CachedGISTEmbedLoss if config.cached_loss else GISTEmbedLoss)(model, guide=guide, **temperature, **sides,
                                                                               **cached, **gather)
    scale = {} if config.temperature is None else {"scale": 1 / config.temperature}
    return (CachedMultipleNegativesRankingLoss if config.cached_loss else MultipleNegativesRankingLoss)(
        model, **scale, **cached, **gather)


def arguments(folder: Path, config: TrainConfig, data: TrainingData, world: int):
    """4. The trainer's arguments: batches, schedule, checkpoints (in ``folder``), model selection, precision, processes."""
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers

    selecting = data.evaluator is not None
    return SentenceTransformerTrainingArguments(
        output_dir=str(folder),
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.batch_size,
        learning_rate=config.learning_rate,
        warmup_ratio=config.warmup_ratio,
        batch_sampler=LengthGroupedNoDuplicatesBatchSampler if config.length_aware else BatchSamplers.NO_DUPLICATES,
        eval_strategy="steps" if data.holdout is not None or selecting else "no",
        # with model selection, score the dev split at every checkpoint and keep the best one
        eval_steps=config.save_steps if selecting else config.eval_steps,
        load_best_model_at_end=selecting,
        metric_for_best_model=f"eval_{DEV_NDCG}" if selecting else None,
        greater_is_better=True if selecting else None,
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
        **((distributed_args() if world > 1 else {}) | _precision(config)),
    )


_BALANCE_HINT = "; `pairs.balance: downsample` dropped pairs to balance code and docs: `pairs.balance: upsample` keeps them all"

SOUP = ("mnrl", "gist")  # train.loss: soup, its ingredients in training order


@dataclass
class Fitted:
    """One training run's record (one ingredient of a soup): what the manifest and the loss plot need. A soup's
    finished ingredient keeps it beside its weights, so a resumed soup need not train that ingredient again."""

    name: str  # the loss's class name
    steps: int
    max_steps: int
    steps_run: int  # this process's steps (a resumed run's, not the checkpoint's)
    runtime: float  # the trainer's own seconds
    budget_cap: int | None
    log_history: list
    best_checkpoint: str | None = None  # model selection (train.dev_fraction): the checkpoint kept, its dev nDCG@10
    best_metric: float | None = None

    @property
    def final_loss(self) -> float:
        """The mean training loss of the last 10 logged steps."""
        losses = [h["loss"] for h in self.log_history if "loss" in h][-10:]
        return float(np.mean(losses)) if losses else float("nan")


def fit(config: TrainConfig, name: str, model, guide, data: TrainingData, world: int, folder: Path,
        resume: bool, budget_s: float | None) -> Fitted:
    """3-6. Loss, arguments, trainer, and training from the base (or the newest checkpoint in ``folder``)."""
    from sentence_transformers import SentenceTransformerTrainer

    loss = make_loss(config, name, model, guide, world)  # 3. loss
    args = arguments(folder, config, data, world)  # 4. arguments
    budget = TimeBudget(budget_s, folder / "budget.json")
    # 5. trainer
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data.train, eval_dataset=data.holdout, loss=loss,
                                         evaluator=data.evaluator, callbacks=[budget, WallClockCheckpoints(config.save_minutes)])
    trainer.remove_callback(ProgressCallback)  # its bar prints every log dict: repotune's own bar instead
    trainer.add_callback(step_progress())

    # 6. train, or resume from the newest checkpoint (Colab cut-offs, kill -9)
    checkpoint = latest_checkpoint(folder) if resume else None
    if resume and checkpoint is None:
        log.info("no checkpoint in %s: training from the start", folder)
    try:
        output = trainer.train(resume_from_checkpoint=checkpoint)
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise TrainError(f"disk full while writing checkpoints to {folder}: free space, or lower "
                             f"train.save_total_limit / raise train.save_steps") from err
        raise
    state = trainer.state
    return Fitted(type(loss).__name__, state.global_step, state.max_steps,
                  state.global_step - (int(checkpoint.rsplit("-", 1)[-1]) if checkpoint else 0),
                  float(output.metrics.get("train_runtime", 0.0)) or float("nan"), budget.cap, state.log_history,
                  Path(state.best_model_checkpoint or "").name or None, state.best_metric)


def train(run_dir: str | Path, recipe: Recipe | None = None, resume: bool = False, fresh: bool = False) -> dict:
    """Fine-tune on ``run_dir``'s train pairs; save ``run_dir/model``; return the manifest. A run directory that
    holds a training is continued (``resume``) or deleted first (``fresh``), never silently (``resume.check_resume``)."""
    run = RunDir(run_dir)
    recipe = recipe or run.read_recipe()
    config = recipe.train
    if resume and not fresh and (done := finished_manifest(run, recipe)) is not None:
        log.info("training of %s finished at step %d already: nothing to resume", run.root, done["train"]["steps"])
        return done
    manifest = run.read_manifest()
    started = time.perf_counter()

    model, base_copy = load_base(config, manifest)  # 1. model
    data = training_data(run, recipe, model)  # 2. data
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank0 = is_rank0()
    if world > 1:
        _ = arguments(run.checkpoints, config, data, world).device  # sets up the process group (torchrun) for the barrier
    if rank0:
        check_resume(run, recipe, resume, fresh)
    barrier()  # the other processes wait until rank 0 has set up checkpoints/
    budget_s = parse_duration(config.time_budget) if config.time_budget else None

    if config.loss != "soup":
        fits = [fit(config, config.loss, model, base_copy, data, world, run.checkpoints, resume, budget_s)]
    else:  # a uniform model soup: each ingredient trained from the base on the same pairs, seed and batches
        fits, states = [], []
        for name in SOUP:
            folder, model = run.checkpoints / name, load_base(config, manifest, frozen=False)[0] if fits else model
            if resume and (done := finished_ingredient(folder)):  # finished before the cut-off: as saved
                states.append(done[0])
                fits.append(Fitted(**done[1]))
                continue
            fits.append(fit(config, name, model, base_copy, data, world, folder, resume,
                            budget_s / len(SOUP) if budget_s else None))
            states.append({k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
            if rank0:
                save_ingredient(folder, states[-1], vars(fits[-1]))
            barrier()
        model.load_state_dict(merged_state(states[0], states[1], 0.5))
        model.model_card_data.model_name += ", a uniform soup of its MNRL- and GIST-tuned weights"
        describe_soup(model.model_card_data, [make_loss(config, name, model, base_copy, 1) for name in SOUP])
        log.info("soup: the saved weights are the mean of those tuned by %s", " and by ".join(f.name for f in fits))

    if not rank0:  # one writer: rank 0 saves model, card, plots and manifest
        return manifest

    # 7. WiSE-FT: the final (or best) weights merged with the base's; a resumed run merges the same weights
    seen = data.seen | merge_with_base(model, base_copy, config.merge_alpha, data.evaluator)
    widget = widget_pairs(data.train)
    if len(widget):  # the card's examples: real questions over real chunks, under their header as search embeds them
        model.model_card_data.set_widget_examples(widget)
    save_model(run, model, recipe)  # 8. save
    return record(run, recipe, fits, model, len(data.train), seen, started)  # 9. loss curve and manifest


def record(run: RunDir, recipe: Recipe, fits: list[Fitted], model, train_pairs: int, seen: dict, started: float) -> dict:
    """9. The loss curve, the training log and the manifest's ``train``; throughput counts the trainer's own
    runtime (no load or save). A soup's steps and seconds are those of its ingredients together. Marks the
    training finished, so a second resume trains nothing."""
    config = recipe.train
    runtime = sum(f.runtime for f in fits)
    write_json(run.root / "train_log.json", fits[0].log_history if len(fits) == 1 else {f.name: f.log_history for f in fits})
    plot_loss({f.name: f.log_history for f in fits}, run.plots / "loss.png")
    if seen.get("dev_pairs") is not None:
        seen["best_checkpoint"] = fits[-1].best_checkpoint if len(fits) == 1 else {f.name: f.best_checkpoint for f in fits}
        seen["best_dev_ndcg@10"] = fits[-1].best_metric if len(fits) == 1 else {f.name: f.best_metric for f in fits}
    name = fits[0].name if len(fits) == 1 else "soup of " + " and ".join(f.name for f in fits)
    # a soup's final training loss: the mean of its ingredients' (each listed under ingredients), not the last one's
    final_loss = round(float(np.mean([f.final_loss for f in fits])), 4)
    manifest = run.update_manifest(
        train={"base_model": config.base_model, "loss": name, "steps": sum(f.steps for f in fits),
               "max_steps_planned": sum(f.max_steps for f in fits), "budget_cap": fits[-1].budget_cap,
               "final_train_loss": final_loss, "train_pairs": train_pairs,
               "precision": next(iter(_precision(config)), "fp32"), "device": str(model.device),
               "seconds": round(time.perf_counter() - started, 1), "train_runtime": round(runtime, 2),
               "pairs_per_second": round(sum(f.steps_run for f in fits) * config.batch_size / runtime, 2),
               **({"ingredients": {f.name: {"steps": f.steps, "budget_cap": f.budget_cap, "final_train_loss": round(f.final_loss, 4),
                                             "train_runtime": round(f.runtime, 2)} for f in fits}}
                  if len(fits) > 1 else {}), **seen},
        model_hash=run.model_hash(),
    )
    write_json(run.checkpoints / FINISHED, {"steps": manifest["train"]["steps"], "model_hash": manifest["model_hash"]})
    return manifest
