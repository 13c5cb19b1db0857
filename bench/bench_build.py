"""bench-build: build throughput (MB/s, files/s, secret scan included) and peak memory on a large
real repository: the installed Python standard library, at 1x, 2x and 4x corpus size.

Each size runs in its own process, so its peak RSS is its own. Targets: >= 2 MB/s end to end,
peak < 1.5 GB at any size.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sysconfig
import tempfile
from pathlib import Path

from bench.common import run_cli, save


def subset(stdlib: Path, fraction: float, dest: Path) -> Path:
    """The first ``fraction`` of the stdlib's files (sorted), copied: a corpus of a known size."""
    files = sorted(p for p in stdlib.rglob("*") if p.is_file() and not p.is_symlink() and "site-packages" not in p.parts)
    for p in files[: int(len(files) * fraction)]:
        target = dest / p.relative_to(stdlib)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, target)
    return dest


def one_build(repo: Path, out: Path) -> dict:
    wall, peak = run_cli("build", str(repo), "--out", str(out))
    manifest = json.loads((out / "manifest.json").read_text())
    mb = manifest["counts"]["input_mb"]
    files = json.loads((out / "stats" / "collect.json").read_text()).get("kept", 0)
    return {"input_mb": mb, "files": files, "chunks": manifest["counts"]["chunks"], "pairs": manifest["counts"]["pairs"],
            "wall_s": round(wall, 2), "mb_per_s": round(mb / wall, 3), "files_per_s": round(files / wall, 1),
            "stage_seconds": manifest["timings"]["build"], "peak_rss_mb": round(peak, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", default=None, help="a repository to build instead of the standard library")
    args = ap.parse_args()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.repo:
            results["repo"] = one_build(Path(args.repo), tmp / "run")
        else:
            # each size in a fresh process, so each peak RSS is that build's own
            for label, fraction in (("1x", 0.25), ("2x", 0.5), ("4x", 1.0)):
                corpus = subset(stdlib, fraction, tmp / f"src-{label}")
                results[label] = one_build(corpus, tmp / f"run-{label}")
                shutil.rmtree(corpus)
    rows = ["| corpus | input MB | files | chunks | wall s | MB/s | files/s | peak RSS MB |", "|---|---|---|---|---|---|---|---|"]
    rows += [f"| {k} | {r['input_mb']} | {r['files']} | {r['chunks']} | {r['wall_s']} | {r['mb_per_s']} | {r['files_per_s']} | {r['peak_rss_mb']} |"
             for k, r in results.items()]
    rows += ["", "Per-stage seconds (largest corpus): " + json.dumps(list(results.values())[-1]["stage_seconds"]),
             "Targets: >= 2 MB/s end to end (secret scan included), peak RSS < 1500 MB at every size."]
    if len(results) == 3:
        plot(results, Path(__file__).parent / "results" / "build_scaling.png")
        rows.append("\n![build scaling](build_scaling.png)")
    save("build", {"source": args.repo or f"python stdlib ({stdlib})", "sizes": results}, rows)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mb = [r["input_mb"] for r in results.values()]
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.2))
    a.plot(mb, [r["wall_s"] for r in results.values()], "o-")
    a.set_xlabel("input MB"), a.set_ylabel("build seconds"), a.set_title("time"), a.set_ylim(0)
    b.plot(mb, [r["peak_rss_mb"] for r in results.values()], "o-")
    b.axhline(1500, ls="--", c="r", lw=1, label="1.5 GB target")
    b.set_xlabel("input MB"), b.set_ylabel("peak RSS MB"), b.set_title("memory"), b.set_ylim(0), b.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
