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


# Runs the repotune CLI and reports its own peak RSS on stderr as it exits.
_PEAK = ("import atexit, resource, sys; "
         "atexit.register(lambda: print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
         "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)); "
         "from pipeline.cli import main; sys.argv = ['repotune', *sys.argv[1:]]; sys.exit(main())")


def run_cli(*args: str, children: bool = False) -> tuple:
    """Run `repotune ARGS` in a fresh process; return (wall seconds, peak RSS MB of that process), and
    with ``children`` also the peak RSS MB of the largest process it started (the build's workers)."""
    import subprocess
    import time

    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _PEAK, *args], capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"repotune {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    peak_kb, child_kb = map(int, proc.stderr.rsplit("PEAK_RSS_KB", 1)[1].split()[:2])
    return (wall, peak_kb / 1024, child_kb / 1024) if children else (wall, peak_kb / 1024)
