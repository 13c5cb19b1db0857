"""bench-build: build throughput (MB/s, files/s, secret scan included) and peak memory on a large
real repository: the installed Python standard library at 1x, 2x and 4x corpus size (a quarter, half
and all of its files), and 8x (all of it and as many files again from the packages installed beside
repotune). Each size is timed against a bare `detect-secrets scan` of the files the build read, in
the same run.

Each size runs in its own process, so its peak RSS is its own; the workers' peak is read apart
(``RUSAGE_CHILDREN``) and the total counted as main + workers x the largest worker, an upper bound
(forked workers share their parent's pages); the peak PSS of all the build's processes together is
sampled too (shared pages counted once), whole and its anonymous part (the heap; the rest is file
pages of memory-mapped Arrow files, which the kernel drops under pressure). Targets: >= 2 MB/s end to end at 1x, build time <= 1.0x
the bare scan, peak RSS <= 1.5 GB and flat across sizes.

``--languages`` builds trees in other languages instead (bench/sources.py: mongoose from npm, gin from
Debian, fetched on first use) next to Python trees of a similar size, and reports per language: pairs
per type, train / holdout pairs, MB/s end to end and for the chunk stage alone (where the parsers run).
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from bench import sources
from bench.common import run_cli, save


def corpus_files(stdlib: Path, site: Path) -> list[tuple[Path, Path]]:
    """(file, its path in the corpus) for every stdlib file (sorted), then as many files again from
    the installed packages (sorted; under `more/`, since `site-packages` reads as vendored code)."""
    def listed(root: Path) -> list[Path]:
        return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())

    std = [(p, p.relative_to(stdlib)) for p in listed(stdlib) if "site-packages" not in p.parts]
    more = [(p, Path("more") / p.relative_to(site)) for p in listed(site)][: len(std)]
    return std + more


def subset(files: list[tuple[Path, Path]], n: int, dest: Path) -> Path:
    """The first ``n`` files, copied: a corpus of a known size."""
    for source, rel in files[:n]:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return dest


def bare_scan_seconds(repo: Path) -> tuple[float, int]:
    """Seconds of a bare `detect-secrets scan` (its own CLI, its own processes) of the files the build
    reads (collect's list; notebooks as their files), and how many files that is."""
    from pipeline.config import CollectConfig
    from pipeline.ingest.collect import collect
    from pipeline.stage import StageStats

    files = sorted({str(repo / f.path.split("#", 1)[0]) for f in collect(repo, CollectConfig(), StageStats("collect"))})
    list_file = repo.parent / f"{repo.name}.files"
    list_file.write_text("\n".join(files))
    start = time.perf_counter()
    subprocess.run(f"xargs -d '\\n' {shlex.quote(str(Path(sys.executable).parent / 'detect-secrets'))} scan < {shlex.quote(str(list_file))}",
                   shell=True, check=True, cwd=repo, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start, len(files)


def one_build(repo: Path, out: Path, scan: bool = False) -> dict:
    wall, peak, worker_peak, pss, anon = run_cli("build", str(repo), "--out", str(out), children=True)
    manifest = json.loads((out / "manifest.json").read_text())
    mb = manifest["counts"]["input_mb"]
    files = json.loads((out / "stats" / "collect.json").read_text()).get("kept", 0)
    timings = manifest["timings"]
    workers = timings.get("build_workers", 1)
    result = {"input_mb": mb, "files": files, "chunks": manifest["counts"]["chunks"], "pairs": manifest["counts"]["pairs"],
              "wall_s": round(wall, 2), "mb_per_s": round(mb / wall, 3), "files_per_s": round(files / wall, 1),
              "build_s": timings.get("build_total"), "build_mb_per_s": round(mb / timings["build_total"], 3),
              "stage_seconds": timings["build"], "files_wall_s": timings.get("build_files_wall"), "workers": workers,
              "peak_rss_mb": round(peak, 1), "worker_peak_rss_mb": round(worker_peak, 1),
              "total_peak_rss_mb": round(peak + workers * worker_peak, 1) if workers > 1 else round(peak, 1),
              "peak_pss_mb": round(pss, 1), "peak_pss_anon_mb": round(anon, 1),
              "dataset_hash": manifest["dataset_hash"]}
    if scan:
        seconds, scanned = bare_scan_seconds(repo)
        result.update(detect_secrets_s=round(seconds, 2), detect_secrets_files=scanned, vs_detect_secrets=round(wall / seconds, 2))
    return result


def languages(names: list[str]) -> None:
    """One build per source tree: structure, pairs and throughput per language, side by side."""
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            out = Path(tmp) / name
            r = one_build(sources.ensure(name), out)
            pairs = json.loads((out / "stats" / "pairs.json").read_text())
            chunk = json.loads((out / "stats" / "chunk.json").read_text())
            manifest = json.loads((out / "manifest.json").read_text())
            r.update(language=sources.language(name), train_pairs=manifest["counts"]["train_pairs"],
                     holdout_pairs=manifest["counts"]["holdout_pairs"],
                     mined={k[5:]: v for k, v in sorted(pairs.items()) if k.startswith("type_")},
                     dropped_balance=pairs.get("dropped_balance", 0),
                     structure={k: v for k, v in sorted(chunk.items()) if k.startswith(("structure_", "blocks_", "syntax_fallback_"))},
                     chunk_mb_per_s=round(r["input_mb"] / max(r["stage_seconds"]["chunk"], 1e-3), 2))
            results[name] = r
    types = sorted({t for r in results.values() for t in r["mined"]})
    rows = ["| source | language | input MB | files | chunks | pairs (kept) | train / holdout | " + " | ".join(types)
            + " | MB/s | chunk-stage MB/s |", "|---" * (9 + len(types)) + "|"]
    rows += [f"| {k} | {r['language']} | {r['input_mb']} | {r['files']} | {r['chunks']} | {r['pairs']} | {r['train_pairs']} / {r['holdout_pairs']} | "
             + " | ".join(str(r["mined"].get(t, 0)) for t in types) + f" | {r['mb_per_s']} | {r['chunk_mb_per_s']} |" for k, r in results.items()]
    rows += ["", "Pair types are as mined, before `pairs.balance_code_share` down-samples code (dropped: "
             + ", ".join(f"{k} {r['dropped_balance']}" for k, r in results.items()) + "). MB/s end to end includes "
             "the process start (~4 s), which dominates trees this small; the chunk stage's MB/s is the parsers' share.",
             "Chunked by structure / blocks / fallback: " + "; ".join(f"{k} {r['structure']}" for k, r in results.items())]
    save("build: languages", {"sources": {k: str(sources.tree(k)) for k in results}, "results": results}, rows)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", default=None, help="a repository to build instead of the standard library")
    ap.add_argument("--languages", nargs="*", default=None, metavar="SOURCE",
                    help=f"build trees in other languages next to Python ones (default: {' '.join([*sources.FETCHED, *sources.LOCAL])})")
    ap.add_argument("--sizes", type=int, default=4, choices=range(1, 5), help="how many of 1x 2x 4x 8x to build (default all)")
    args = ap.parse_args()
    if args.languages is not None:
        languages(args.languages or [*sources.FETCHED, *sources.LOCAL])
        return
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.repo:
            results["repo"] = one_build(Path(args.repo), tmp / "run", scan=True)
        else:
            files = corpus_files(stdlib, Path(sysconfig.get_paths()["purelib"]))
            n_std = sum(1 for _, rel in files if rel.parts[0] != "more")
            # each size in a fresh process, so each peak RSS is that build's own
            for label, n in (("1x", n_std // 4), ("2x", n_std // 2), ("4x", n_std), ("8x", len(files)))[: args.sizes]:
                corpus = subset(files, n, tmp / f"src-{label}")
                results[label] = one_build(corpus, tmp / f"run-{label}", scan=True)
                shutil.rmtree(corpus)
    rows = ["| corpus | input MB | files | chunks | pairs | wall s | MB/s | build MB/s | bare detect-secrets s | build / bare scan "
            "| peak RSS MB (main + workers) | peak PSS MB, all processes (anonymous) |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    rows += [f"| {k} | {r['input_mb']} | {r['files']} | {r['chunks']} | {r['pairs']} | {r['wall_s']} | {r['mb_per_s']} | "
             f"{r['build_mb_per_s']} | {r['detect_secrets_s']} | {r['vs_detect_secrets']}x | {r['total_peak_rss_mb']} "
             f"({r['peak_rss_mb']} + {r['workers']} x {r['worker_peak_rss_mb']}) | {r['peak_pss_mb']} ({r['peak_pss_anon_mb']}) |" for k, r in results.items()]
    rows += ["", "Per-stage seconds (summed over the worker processes for clean, secrets, chunk and split's chunk signatures; "
             "`files_wall_s` is the wall time of that part):", ""]
    rows += [f"- {k}: " + json.dumps({**r["stage_seconds"], "files_wall_s": r["files_wall_s"]}) for k, r in results.items()]
    rows += ["", "MB/s is end to end, the process start and imports (~2 s) included; build MB/s is the build's own time "
             "(the manifest's build_total). Targets: >= 2 MB/s end to end at 1x, build / bare scan <= 1.0x, "
             "peak RSS <= 1500 MB and flat across sizes."]
    if len(results) > 2:
        plot(results, Path(__file__).parent / "results" / "build_scaling.png")
        rows.append("\n![build scaling](build_scaling.png)")
    save("build", {"source": args.repo or f"python stdlib ({stdlib}) + installed packages for 8x", "sizes": results}, rows)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mb = [r["input_mb"] for r in results.values()]
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3.2))
    a.plot(mb, [r["wall_s"] for r in results.values()], "o-")
    a.set_xlabel("input MB"), a.set_ylabel("build seconds"), a.set_title("time"), a.set_ylim(0)
    b.plot(mb, [r["total_peak_rss_mb"] for r in results.values()], "o-", label="main + workers")
    b.plot(mb, [r["peak_rss_mb"] for r in results.values()], "s--", label="main")
    b.plot(mb, [r["peak_pss_mb"] for r in results.values()], "^-", label="PSS, all processes")
    b.plot(mb, [r["peak_pss_anon_mb"] for r in results.values()], "v:", label="its anonymous part")
    b.axhline(1500, ls="--", c="r", lw=1, label="1.5 GB target")
    b.set_xlabel("input MB"), b.set_ylabel("peak memory MB"), b.set_title("memory"), b.set_ylim(0, 1800), b.legend(loc="upper left", fontsize=7, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    main()
