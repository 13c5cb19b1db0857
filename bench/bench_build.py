"""bench-build: build throughput (MB/s, files/s, secret scan included) and peak memory on a large
real repository: the installed Python standard library, at 1x, 2x and 4x corpus size.

Each size runs in its own process, so its peak RSS is its own. Targets: >= 2 MB/s end to end,
peak < 1.5 GB at any size.

``--languages`` builds trees in other languages instead (bench/sources.py: mongoose from npm, gin from
Debian, fetched on first use) next to Python trees of a similar size, and reports per language: pairs
per type, train / holdout pairs, MB/s end to end and for the chunk stage alone (where the parsers run).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sysconfig
import tempfile
from pathlib import Path

from bench import sources
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
    args = ap.parse_args()
    if args.languages is not None:
        languages(args.languages or [*sources.FETCHED, *sources.LOCAL])
        return
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
