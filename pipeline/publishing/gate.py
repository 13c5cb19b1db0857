"""gate: run the governance suites (``pytest -m governance``) on a run; write governance.json.

Each check records its value and limit with pytest's own ``record_property``; quality/conftest.py
collects them and writes governance.json at the end of the session, so ``pytest -m governance``
and ``repotune gate`` leave the same result. The result carries the run's dataset and model hashes, so a result that no longer
matches the run (rebuilt data, retrained model) is recognisably stale and publish refuses it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ..rundir import RunDir, RunError, read_json

# The gate's checks, one suite each (quality/test_<marker>.py), and the one text that describes each: pyproject.toml's
# marker list, the PR template's checklist, the README and the docs site's gate page say the same (tests/test_docs.py)
MARKERS = {
    "dataset_size": "enough pairs and chunks in train and holdout",
    "balance": "the code share of what training sees within bounds, and its tilt from the repository's own mix",
    "secrets": "zero secret findings in the dataset and in every file publish would upload",
    "chunk_invariants": "Hypothesis properties of the chunker hold, and the run's chunks obey them",
    "overfitting": "the train-minus-holdout gap tuning added below its limit; tuned at most a margin below base on the holdout",
    "sts": "tuned STS-B Spearman above a floor and at most a margin below base",
    "questions": "on the question set (or, without one, the history yardstick), tuned at most a margin below base",
}


PACKAGE = Path(__file__).resolve().parents[1]  # the package folder, pipeline/


def quality_dir() -> Path:
    """The governance suites: the checkout's top-level quality/ (an editable install, CI), else the copy a
    wheel ships inside the package (``pipeline/quality``, mapped from quality/ by pyproject.toml)."""
    checkout = PACKAGE.parent / "quality"
    return checkout if (checkout / "conftest.py").is_file() and (checkout / "policy.yaml").is_file() else PACKAGE / "quality"


QUALITY_DIR = quality_dir()
POLICY = QUALITY_DIR / "policy.yaml"  # the gate's thresholds
# pytest runs from the checkout (its pyproject.toml; its pipeline/ first on sys.path), or from a wheel in the suites'
# own folder (the package's folder first on sys.path would let its module names shadow top-level ones)
GATE_CWD = QUALITY_DIR if QUALITY_DIR.parent == PACKAGE else QUALITY_DIR.parent


def run_gate(run_dir: str | Path, policy: str | Path | None = None, extra_args: list[str] = ()) -> dict:
    """Run ``pytest -m governance`` on ``run_dir`` in a fresh process (exactly what a developer or CI
    runs); quality/conftest.py writes governance.json, which is returned."""
    run = RunDir(Path(run_dir).resolve())  # pytest runs in the checkout: a path relative to the caller must not change meaning
    if not run.root.is_dir():
        raise RunError(f"{run.root} is not a run directory: run `repotune run REPO --out {run.root}` first")
    run.governance.unlink(missing_ok=True)  # never report an older result as this one
    if run.manifest.is_file() and (stale := run.provenance_problem()) is not None:
        raise RunError(f"the gate judges only what was trained and measured together: {stale}")
    # `--run-dir=PATH` in one token: pytest reads a separate PATH outside the repository as a test path
    cmd = [sys.executable, "-m", "pytest", str(QUALITY_DIR), "-m", "governance", f"--run-dir={run.root}",
           "-p", "no:cacheprovider", "-q", "-rf", *(["--policy", str(Path(policy).resolve())] if policy else []), *extra_args]
    code = subprocess.call(cmd, cwd=GATE_CWD)
    if not run.governance.is_file():
        raise RunError(f"the governance suites did not run (pytest exit code {code}): run `{' '.join(cmd)}` to see why")
    return load_result(run)


def load_result(run: RunDir) -> dict:
    return read_json(run.governance, f"repotune gate {run.root}")


def is_current(run: RunDir, result: dict) -> tuple[bool, str]:
    """Whether a gate result still describes the run's dataset and model."""
    if not result.get("complete", False):
        return False, f"the gate ran only {result.get('markers_run')}: run every check with `repotune gate {run.root}`"
    dataset_hash = run.read_manifest().get("dataset_hash")
    if result.get("dataset_hash") != dataset_hash:
        return False, f"the dataset changed since the gate ran (gate {str(result.get('dataset_hash'))[:12]}, now {str(dataset_hash)[:12]})"
    if result.get("model_hash") != run.model_hash():
        return False, "the model changed since the gate ran"
    return True, ""
