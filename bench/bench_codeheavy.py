"""bench-codeheavy: the default recipe on code-heavy repositories (90 %+ code chunks, a short README), issue 33.

For each repository of ``sources.CODE_HEAVY``: the pairs a build keeps under the old balance (``pairs.balance:
downsample``, the default until 2026-12-07) and the new one (``upsample``), then the default recipe end to end
(`repotune run REPO --out runs/bench/codeheavy-NAME --fresh`, no question set: the gate judges the history yardstick)
and `repotune gate` on it. Results: bench/results/<date>.json and .md, section "code-heavy repositories".

    python -m bench.bench_codeheavy                     # all four (~10 min each on 2 cores)
    python -m bench.bench_codeheavy --sources pflag --builds-only
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from bench.common import ROOT, save
from bench.sources import CODE_HEAVY, checkout

REPOTUNE = [sys.executable, "-m", "pipeline.cli"]


def _code_share(run) -> float:
    from datasets import load_from_disk

    kinds = load_from_disk(str(run / "dataset" / "corpus"))["kind"]
    return round(sum(k == "code" for k in kinds) / len(kinds), 4)


def builds(name: str) -> dict:
    """Pairs kept by a build under each balance mode (a build only: no training)."""
    repo, out = checkout(name, "codeheavy"), {}
    for mode in ("downsample", "upsample"):
        run = ROOT / "runs" / "bench" / f"codeheavy-{name}-build-{mode}"
        subprocess.run([*REPOTUNE, "-q", "build", str(repo), "--out", str(run), "--set", f"pairs.balance={mode}"], check=True)
        manifest = json.loads((run / "manifest.json").read_text())
        stats = json.loads((run / "stats" / "pairs.json").read_text())
        out[mode] = {"pairs_kept": manifest["counts"]["pairs"], "train_pairs": manifest["counts"]["train_pairs"],
                     "holdout_pairs": manifest["counts"]["holdout_pairs"], "dropped_balance": stats.get("dropped_balance", 0),
                     "docs_pairs": stats.get("kind_docs", 0), "chunks": manifest["counts"]["chunks"],
                     "code_share_of_chunks": _code_share(run)}
    return out


def end_to_end(name: str) -> dict:
    """The default recipe through `repotune run`, then the gate; the stage times and what the gate said."""
    repo, run = checkout(name, "codeheavy"), ROOT / "runs" / "bench" / f"codeheavy-{name}"
    started = time.perf_counter()
    proc = subprocess.run([*REPOTUNE, "run", str(repo), "--out", str(run), "--fresh"], capture_output=True, text=True)
    result = {"run_exit": proc.returncode, "run_seconds": round(time.perf_counter() - started),
              "load": os.getloadavg()[0]}
    if proc.returncode:
        result["error"] = proc.stderr.strip().splitlines()[-1:]
        return result
    gate = subprocess.run([*REPOTUNE, "gate", str(run)], capture_output=True, text=True)
    governance = json.loads((run / "governance.json").read_text()) if (run / "governance.json").is_file() else {}
    metrics = json.loads((run / "metrics.json").read_text())
    manifest = json.loads((run / "manifest.json").read_text())
    history = metrics.get("history", {})
    result |= {"gate_exit": gate.returncode, "gate_passed": governance.get("passed"),
               "failed": [f"{c['marker']}/{c['check']}: {c['value']} (limit {c['limit']})" for c in governance.get("checks", [])
                          if not c["passed"]],
               "checks": len(governance.get("checks", [])), "train_pairs": manifest["counts"]["train_pairs"],
               "steps": manifest["train"]["steps"], "pairs_seen": manifest["train"].get("pairs_seen"),
               "code_share_seen": manifest["train"].get("code_share_seen"),
               "holdout": {m: round(metrics["holdout"][m]["ndcg@10"], 4) for m in ("base", "tuned")},
               "history": {"n": history.get("n", 0), **({m: round(history[m]["ndcg@10"], 4) for m in ("base", "tuned", "hybrid")}
                                                        if history.get("n") else {}), "delta_ci": history.get("delta_ci")}}
    return result


def rows(results: dict) -> list[str]:
    lines = ["The default recipe on code-heavy repositories (`python -m bench.bench_codeheavy`; no question set, so the gate's "
             "`questions` check judges the history yardstick). Pairs a build keeps under the old balance (`downsample`) and "
             "the new default (`upsample`), then `repotune run --fresh` and `repotune gate`; load = the 1-minute load "
             "average when the run ended (2 cores).", "",
             "| repository | chunks (code share) | pairs kept: downsample → upsample (docs pairs) | gate | failed | holdout base → tuned "
             "| history: queries, base → tuned [tuned − base 95 % CI] | run s (load) |", "|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        b, e = r["builds"], r.get("run", {})
        h = e.get("history", {})
        hist = (f"{h['n']}, {h['base']:.3f} → {h['tuned']:.3f} {h['delta_ci']}" if h.get("n") else "none") if e else "not run"
        gate = ("passed" if e.get("gate_passed") else "FAILED") + f" ({e.get('checks', 0)} checks)" if "gate_exit" in e else \
            (f"run exit {e['run_exit']}: {e.get('error')}" if e else "not run")
        hold = f"{e['holdout']['base']:.3f} → {e['holdout']['tuned']:.3f}" if "holdout" in e else ""
        lines.append(f"| {name} | {b['upsample']['chunks']} ({b['upsample']['code_share_of_chunks']:.1%}) | "
                     f"{b['downsample']['pairs_kept']} → {b['upsample']['pairs_kept']} ({b['upsample']['docs_pairs']}) | {gate} | "
                     f"{'; '.join(e.get('failed', [])) or '-'} | {hold} | {hist} | {e.get('run_seconds', '')} "
                     f"({e.get('load', 0):.1f}) |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", nargs="*", default=list(CODE_HEAVY), choices=list(CODE_HEAVY))
    ap.add_argument("--builds-only", action="store_true", help="the builds' pair counts, no training")
    args = ap.parse_args()
    results = {}
    for name in args.sources:
        results[name] = {"builds": builds(name)}
        print(name, json.dumps(results[name]["builds"]), flush=True)
        if not args.builds_only:
            results[name]["run"] = end_to_end(name)
            print(name, json.dumps(results[name]["run"]), flush=True)
    save("code-heavy repositories", {"results": results}, rows(results))


if __name__ == "__main__":
    main()
