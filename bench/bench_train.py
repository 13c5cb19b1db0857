"""bench-train: pairs/s of repotune's training against a plain sentence-transformers script with
the same model, data and hyperparameters, in one run; and repotune with length-aware batching on
and off. Throughput is steps x batch / the trainer's own train_runtime (loading and saving excluded).
Target: repotune >= 1.0x the plain script, above it with length-aware batching.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import ROOT, run_cli, save
from pipeline.models import resolve_model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", default=str(ROOT), help="repository whose pairs are the fixed training set")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--model", default="packaged:all-MiniLM-L6-v2")
    args = ap.parse_args()
    common = [f"train.base_model={args.model}", f"train.max_steps={args.steps}", f"train.batch_size={args.batch}",
              f"train.max_seq_length={args.seq_len}", "train.time_budget=null", "train.save_steps=100000", "train.eval_steps=100000",
              "train.epochs=100"]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        run_cli("build", args.repo, "--out", str(base), *[x for s in common for x in ("--set", s)])
        # interleave the three so that machine noise hits each alike: plain, repotune, repotune+length
        for name, extra in (("plain", None), ("repotune", "train.length_aware=false"), ("repotune_length_aware", "train.length_aware=true")):
            if extra is None:
                out = subprocess.run([sys.executable, "-m", "bench.plain_st_train", str(base / "dataset" / "pairs"), resolve_model(args.model),
                                      str(Path(tmp) / "plain"), str(args.steps), str(args.batch), str(args.seq_len)],
                                     capture_output=True, text=True, cwd=ROOT, check=True)
                results[name] = json.loads(out.stdout.strip().splitlines()[-1])
            else:
                run = Path(tmp) / name
                shutil.copytree(base, run)
                run_cli("train", str(run), "--set", extra)
                t = json.loads((run / "manifest.json").read_text())["train"]
                results[name] = {"steps": t["steps"], "train_runtime": t["train_runtime"], "pairs_per_second": t["pairs_per_second"]}
    plain = results["plain"]["pairs_per_second"]
    for r in results.values():
        r["ratio_to_plain"] = round(r["pairs_per_second"] / plain, 3)
    rows = [f"{args.steps} steps, batch {args.batch}, {args.seq_len} tokens, {args.model}, fp32 CPU", "",
            "| trainer | pairs/s | ratio to plain |", "|---|---|---|"]
    rows += [f"| {k} | {r['pairs_per_second']:.2f} | {r['ratio_to_plain']:.3f} |" for k, r in results.items()]
    rows.append("\nTarget: repotune >= 1.0x plain; length-aware batching above it.")
    save("train", {"steps": args.steps, "batch": args.batch, "seq_len": args.seq_len, "model": args.model, "results": results}, rows)


if __name__ == "__main__":
    main()
