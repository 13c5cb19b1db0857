"""bench-quality: build, train and evaluate on a repository with the default recipe; base / tuned /
BM25 holdout nDCG@10 and MRR@10, STS-B Spearman, and time to model.
Target (real repositories nobody here wrote): tuned >= base + 0.10 nDCG@10, beats BM25, STS-B drop <= 0.01.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from bench.common import ROOT, run_cli, save


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", default=str(ROOT))
    ap.add_argument("--recipe", default="default")
    ap.add_argument("--set", action="append", default=[], help="recipe overrides, as for repotune")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        wall, peak = run_cli("run", args.repo, "--out", str(out), "--recipe", args.recipe, *[x for s in args.set for x in ("--set", s)])
        m = json.loads((out / "metrics.json").read_text())
        manifest = json.loads((out / "manifest.json").read_text())
    h = m["holdout"]
    result = {"repo": args.repo, "recipe": args.recipe, "overrides": args.set, "time_to_model_s": round(wall, 1), "peak_rss_mb": round(peak, 1),
              "holdout": h, "holdout_size": m["holdout_size"], "sts": m["sts"], "overfit_gap": m["overfit_gap"], "base_gap": m["base_gap"],
              "train": manifest.get("train"), "counts": manifest.get("counts")}
    rows = [f"`{Path(args.repo).name}` with recipe `{args.recipe}` {args.set or ''}: {m['holdout_size']['queries']} holdout queries, "
            f"{manifest['counts']['train_pairs']} train pairs, {manifest['train']['steps']} steps; time to model {wall / 60:.1f} min", "",
            "| model | nDCG@10 | MRR@10 | recall@10 |", "|---|---|---|---|"]
    rows += [f"| {k} | {v['ndcg@10']:.4f} | {v['mrr@10']:.4f} | {v['recall@10']:.4f} |" for k, v in h.items()]
    rows += ["", f"Tuned - base nDCG@10: {h['tuned']['ndcg@10'] - h['base']['ndcg@10']:+.4f}; tuned - BM25: {h['tuned']['ndcg@10'] - h['bm25']['ndcg@10']:+.4f}; "
             f"STS-B Spearman base {m['sts']['base_spearman']:.4f}, tuned {m['sts']['tuned_spearman']:.4f} "
             f"({m['sts']['tuned_spearman'] - m['sts']['base_spearman']:+.4f}); overfit gap {m['overfit_gap']:+.4f} (base {m['base_gap']:+.4f})."]
    save(f"quality: {Path(args.repo).name}", result, rows)


if __name__ == "__main__":
    main()
