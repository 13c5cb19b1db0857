"""bench-gpu: the CUDA path of training, on a lent GPU (the `device` tool): fp32, fp16 and bf16
(`train.precision: auto` must pick bf16 on Ampere and newer), pairs/s from the trainer's own runtime.

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
    from pipeline.train import _precision, train

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
        results["runs"][precision] = {"resolved": next(iter(_precision(recipe.train)), "fp32"), "pairs_per_second": t["pairs_per_second"],
                                      "train_runtime": t["train_runtime"], "final_train_loss": t["final_train_loss"], "device": t["device"],
                                      "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20), "wall_s": round(time.perf_counter() - start, 1)}
        print(precision, results["runs"][precision], flush=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
