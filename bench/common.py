"""Shared by the benchmarks: where results go, what machine they ran on, a Markdown table."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]


def machine() -> dict:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "gpu": gpu}


def save(section: str, data: dict, rows: list[str]) -> Path:
    """Merge ``data`` under ``section`` into today's JSON, and rewrite today's Markdown section."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    today = dt.date.today().isoformat()
    path = RESULTS / f"{today}.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    results[section] = {**data, "machine": machine(), "finished": dt.datetime.now().isoformat(timespec="seconds"),
                        "command": " ".join([Path(sys.executable).name, "-m", *sys.argv])}
    path.write_text(json.dumps(results, indent=2) + "\n")
    md = RESULTS / f"{today}.md"
    sections = {}
    if md.is_file():
        for block in md.read_text().split("\n## ")[1:]:
            title, _, body = block.partition("\n")
            sections[title.strip()] = body.strip()
    sections[section] = "\n".join(rows)
    md.write_text(f"# repotune benchmarks, {today}\n\n" + "\n\n".join(f"## {k}\n\n{v}" for k, v in sections.items()) + "\n")
    print("\n".join(rows))
    print(f"results: {path}")
    return path


# Runs the repotune CLI and reports on stderr as it exits: its own peak RSS, the largest child's, and
# the peak PSS of the process and its children together (proportional set size: a page shared by a
# forked worker and its parent counts once), whole and anonymous only (heap, not the file pages a
# memory-mapped Arrow file brings in), sampled every 0.2 s from /proc (Linux; 0 elsewhere).
_PEAK = """
import atexit, glob, resource, sys, threading, time
peak = [0, 0]
def pss(pid):
    try:
        fields = dict(l.split()[:2] for l in open(f"/proc/{pid}/smaps_rollup") if l[0].isupper())
        return int(fields["Pss:"]), int(fields["Pss_Anon:"])
    except (OSError, KeyError, ValueError):
        return 0, 0
def sample():
    while True:
        kids = [k for f in glob.glob("/proc/self/task/*/children") for k in open(f).read().split()]
        total = [sum(v) for v in zip(pss("self"), *map(pss, kids))]
        peak[:] = [max(a, b) for a, b in zip(peak, total)]
        time.sleep(0.2)
threading.Thread(target=sample, daemon=True).start()
atexit.register(lambda: print("PEAK_RSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                              resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, *peak, file=sys.stderr))
from pipeline.cli import main
sys.argv = ["repotune", *sys.argv[1:]]
sys.exit(main())
"""


def run_cli(*args: str, children: bool = False, cwd: Path = ROOT) -> tuple:
    """Run `repotune ARGS` in a fresh process; return (wall seconds, peak RSS MB of that process), and
    with ``children`` also the peak RSS MB of the largest process it started (the build's workers) and
    the peak PSS MB, whole and anonymous, of the process and its children together. ``cwd``: the
    checkout whose ``pipeline`` runs (another commit's worktree, to compare with it in the same run)."""
    import subprocess
    import time

    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _PEAK, *args], capture_output=True, text=True, cwd=cwd)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"repotune {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    peak_kb, child_kb, pss_kb, anon_kb = map(int, proc.stderr.rsplit("PEAK_RSS_KB", 1)[1].split()[:4])
    return (wall, peak_kb / 1024, child_kb / 1024, pss_kb / 1024, anon_kb / 1024) if children else (wall, peak_kb / 1024)
