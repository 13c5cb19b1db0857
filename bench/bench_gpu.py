"""bench-gpu: the CUDA path of training, on a lent GPU (the `device` tool): fp32, fp16 and bf16
(`train.precision: auto` must pick bf16 on Ampere and newer): pairs/s from the trainer's own runtime,
tokens/s, peak GPU memory and an estimated model-FLOPs utilisation. Add `--set train.dataloader_workers=4`
to tokenise off the training process; run it for MiniLM-L6 and for the colab recipe's base (L12).

python -m bench.bench_gpu RUN_DIR MODEL_DIR OUT_JSON [--steps 60] [--batch 128] [--seq-len 256]

RUN_DIR is a built run (its dataset/pairs is the fixed training set); MODEL_DIR a local
SentenceTransformer (its weights are cast to fp32 first: AMP keeps fp32 master weights).
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch

# dense peak TFLOP/s by precision (vendor data sheets, no sparsity), for the model-FLOPs utilisation estimate
PEAK_TFLOPS = {"H100": {"fp32": 67, "bf16": 989, "fp16": 989}, "H200": {"fp32": 67, "bf16": 989, "fp16": 989},
               "A100": {"fp32": 19.5, "bf16": 312, "fp16": 312}, "L4": {"fp32": 30, "bf16": 121, "fp16": 121},
               "T4": {"fp32": 8.1, "bf16": 0, "fp16": 65}}


def tokens_per_pair(run: Path, model_dir: Path, seq_len: int, sample: int = 2000) -> float:
    """Mean tokens (anchor + positive, truncated at ``seq_len``) of the run's training pairs: what a step pays for."""
    from transformers import AutoTokenizer

    from pipeline.dataset import load_pairs
    from pipeline.rundir import RunDir

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    train = load_pairs(RunDir(run))["train"]
    rows = train.select(range(min(sample, len(train))))
    lengths = [min(seq_len, len(ids)) for col in ("anchor", "positive") for ids in tokenizer(rows[col])["input_ids"]]
    return 2 * sum(lengths) / len(lengths)


def mfu(model_dir: Path, tokens_per_s: float, precision: str) -> float | None:
    """Model-FLOPs utilisation: 6 x parameters x tokens/s over the GPU's dense peak (None for an unknown GPU)."""
    from sentence_transformers import SentenceTransformer

    name = torch.cuda.get_device_name(0)
    peak = next((p[precision] for gpu, p in PEAK_TFLOPS.items() if gpu in name), None)
    if not peak:
        return None
    params = sum(p.numel() for p in SentenceTransformer(str(model_dir), local_files_only=True).parameters())
    return round(6 * params * tokens_per_s / (peak * 1e12), 4)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--precisions", default="fp32,fp16,auto")
    ap.add_argument("--set", action="append", default=[], help="more recipe overrides, e.g. train.length_aware=false")
    args = ap.parse_args()

    from sentence_transformers import SentenceTransformer

    from pipeline.config import recipe_from_dict
    from pipeline.rundir import RunDir
    from pipeline.training.train import _precision, train

    assert torch.cuda.is_available(), "no CUDA device"
    tmp = Path(tempfile.mkdtemp())
    fp32 = tmp / "model-fp32"
    SentenceTransformer(args.model, local_files_only=True).float().save(str(fp32))
    results = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "steps": args.steps,
               "batch": args.batch, "seq_len": args.seq_len, "overrides": args.set, "bf16_supported": torch.cuda.is_bf16_supported(), "runs": {}}
    base = RunDir(args.run).read_recipe().to_dict()
    for precision in args.precisions.split(","):
        run = tmp / f"run-{precision}"
        shutil.copytree(args.run, run, ignore=shutil.ignore_patterns("checkpoints", "model"))
        recipe = recipe_from_dict(base, [f"train.base_model={fp32}", f"train.precision={precision}", f"train.max_steps={args.steps}",
                                         f"train.batch_size={args.batch}", f"train.max_seq_length={args.seq_len}", "train.time_budget=null",
                                         "train.save_steps=100000", "train.eval_steps=100000", *args.set])
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        t = train(run, recipe)["train"]
        resolved = next(iter(_precision(recipe.train)), "fp32")
        tokens_per_s = t["pairs_per_second"] * tokens_per_pair(run, fp32, args.seq_len)
        results["runs"][precision] = {"resolved": resolved, "pairs_per_second": t["pairs_per_second"],
                                      "tokens_per_second": round(tokens_per_s), "mfu": mfu(fp32, tokens_per_s, resolved),
                                      "train_runtime": t["train_runtime"], "final_train_loss": t["final_train_loss"], "device": t["device"],
                                      "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20), "wall_s": round(time.perf_counter() - start, 1)}
        print(precision, results["runs"][precision], flush=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
