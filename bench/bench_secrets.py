"""bench-secrets: does anything secret reach a dataset, what does the scan damage, what does it cost.

1. Planted: the adversarial corpus of tests/secret_corpus.py (390 forms over 30 file types, fresh
   random values of the right shape each seed), redacted by the scanner for ``--seeds`` seeds: every
   form whose value, or any 12-character window of its random part, survives is a leak. One seed is
   also built end to end (default recipe) and every byte of the run directory searched.
2. Clean: this repository (tests/ aside) + requests + click: findings, and lines changed that hold
   no finding.
3. Cost: the 1x standard-library bench of bench-build, built by this checkout and by ``--baseline``
   (a commit, default the one before the new scanners) in the same run, each against a bare
   `detect-secrets scan` of the same files.

Targets (issue 20): 0 leaks; <= 2 findings on clean code and no line without a secret changed; the
build <= 1.0x a bare detect-secrets scan and within +25 % of the baseline's time.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from bench.bench_build import bare_scan_seconds, corpus_files, subset
from bench.common import ROOT, run_cli, save

sys.path.insert(0, str(ROOT / "tests"))
import secret_corpus  # noqa: E402  (the test suite's generator: one corpus for the tests and the bench)

BASELINE = "ba80cbf"  # the last commit with detect-secrets + repotune's plugins only


def planted(seeds: int) -> dict:
    from pipeline.ingest.secrets import SecretScanner

    leaked: dict[str, int] = {}
    values = 0
    start = time.perf_counter()
    with SecretScanner() as scanner:
        for seed in range(seeds):
            files = secret_corpus.generate(seed)
            blobs = {}
            for f in files:
                redacted, _ = scanner.redact(f.text, f.path)
                blobs[f"redacted:{f.path}"] = redacted.encode()
                values += sum(p.category != "path" for p in f.planted)
            for form, _, _ in secret_corpus.leaks([f for f in files if all(p.category != "path" for p in f.planted)], blobs):
                leaked[form] = leaked.get(form, 0) + 1
    suffixes = {Path(f.path.split("#")[0]).suffix or Path(f.path).name for f in files}
    return {"seeds": seeds, "forms": len(secret_corpus.forms()), "files_per_seed": len(files), "file_types": len(suffixes),
            "values_planted": values, "forms_leaked": leaked, "seconds": round(time.perf_counter() - start, 1)}


def planted_build(tmp: Path) -> dict:
    repo = tmp / "planted"
    files = secret_corpus.generate(1234)
    for f in files:
        target = repo / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(f.text)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.email=b@x", "-c", "user.name=b", "commit", "-qm", "planted"], cwd=repo, check=True)
    out = tmp / "planted-run"
    run_cli("build", str(repo), "--out", str(out))
    leaks = secret_corpus.leaks(files, secret_corpus.run_dir_blobs(out))
    return {"files": len(files), "run_files": sum(1 for p in out.rglob("*") if p.is_file()), "leaks": sorted({f for f, _, _ in leaks})}


def clean() -> dict:
    from pipeline.ingest.secrets import SecretScanner

    corpus = secret_corpus.clean_corpus()
    findings, changed = [], 0
    with SecretScanner() as scanner:
        for path, text in corpus:
            redacted, found = scanner.redact(text, path)
            findings += [f"{f.type} in {f.path}:{f.line}" for f in found]
            lines = {f.line for f in found}
            changed += sum(a != b and n not in lines for n, (a, b) in enumerate(zip(text.split("\n"), redacted.split("\n")), 1))
    return {"files": len(corpus), "mb": round(sum(len(t) for _, t in corpus) / 1e6, 2), "findings": findings,
            "lines_changed_without_finding": changed}


def cost(tmp: Path, baseline: str) -> dict:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = corpus_files(stdlib, Path(sysconfig.get_paths()["purelib"]))
    n_std = sum(1 for _, rel in files if rel.parts[0] != "more")
    corpus = subset(files, n_std // 4, tmp / "src-1x")
    worktree = tmp / "baseline"
    subprocess.run(["git", "worktree", "add", "-q", "--detach", str(worktree), baseline], cwd=ROOT, check=True)
    try:
        result = {}
        for label, cwd in (("baseline", worktree), ("now", ROOT)):
            wall = run_cli("build", str(corpus), "--out", str(tmp / f"run-{label}"), cwd=cwd)[0]
            result[f"{label}_s"] = round(wall, 2)
        seconds, scanned = bare_scan_seconds(corpus)
        result.update(detect_secrets_s=round(seconds, 2), files=scanned, vs_detect_secrets=round(result["now_s"] / seconds, 2),
                      vs_baseline=round(result["now_s"] / result["baseline_s"], 2), baseline=baseline)
        return result
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=ROOT, check=False)
        shutil.rmtree(corpus, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=30, help="corpora redacted at scanner level (default 30)")
    ap.add_argument("--baseline", default=BASELINE, help=f"the commit to time against (default {BASELINE})")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        results = {"planted": planted(args.seeds), "planted_build": planted_build(tmp), "clean": clean(), "cost": cost(tmp, args.baseline)}
    p, b, c, t = results["planted"], results["planted_build"], results["clean"], results["cost"]
    rows = [
        f"Planted (tests/secret_corpus.py): {p['forms']} forms in {p['files_per_seed']} files of {p['file_types']} types, "
        f"{p['seeds']} seeds, {p['values_planted']} values: **{sum(p['forms_leaked'].values())} leaked** "
        f"({', '.join(f'{k} x{v}' for k, v in sorted(p['forms_leaked'].items())) or 'none'}); {p['seconds']} s.",
        f"Planted, built end to end (seed 1234, default recipe): {b['run_files']} files of the run searched, "
        f"**{len(b['leaks'])} forms leaked** ({', '.join(b['leaks']) or 'none'}).",
        f"Clean code (this repository without tests/, requests, click: {c['files']} files, {c['mb']} MB): "
        f"**{len(c['findings'])} findings** ({'; '.join(c['findings']) or 'none'}), "
        f"{c['lines_changed_without_finding']} lines changed without a finding.",
        "",
        "| 1x stdlib build | wall s | / bare detect-secrets scan | / baseline |",
        "|---|---|---|---|",
        f"| baseline {t['baseline']} | {t['baseline_s']} | {round(t['baseline_s'] / t['detect_secrets_s'], 2)}x | 1.00x |",
        f"| now | {t['now_s']} | {t['vs_detect_secrets']}x | {t['vs_baseline']}x |",
        f"| bare `detect-secrets scan` ({t['files']} files) | {t['detect_secrets_s']} | 1.00x | |",
        "",
        "Targets: 0 leaked; <= 2 findings and 0 lines changed on clean code; build <= 1.0x the bare scan and <= 1.25x the baseline.",
    ]
    save("secrets", results, rows)


if __name__ == "__main__":
    main()
