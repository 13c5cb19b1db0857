"""The gate's pytest plugin (registered through the ``pytest11`` entry point): its command-line options, its markers
with their descriptions (``gate.MARKERS``), the Hypothesis profiles, and governance.json, written at the end of a
session that ran governance checks (each check's value and limit, recorded by quality/conftest.py's ``check``).

Options must be known before pytest picks its root directory, or ``--run-dir runs/x`` is taken for
a test path; a conftest under quality/ registers too late for that, an installed plugin does not.
"""

from __future__ import annotations

import datetime as dt
import json

from ..rundir import RunDir, write_json
from .gate import MARKERS, POLICY

GOVERNANCE = "governance: a governance check over a run directory (the gate: `pytest -m governance --run-dir runs/NAME`)"


def pytest_addoption(parser):
    group = parser.getgroup("repotune", "repotune governance gate")
    group.addoption("--run-dir", default="runs/latest", help="run directory the governance gate checks (default: runs/latest)")
    group.addoption("--policy", default=str(POLICY), help="governance thresholds (default: quality/policy.yaml)")


def pytest_configure(config):
    """Hypothesis profiles (astropy's habit), chosen by HYPOTHESIS_PROFILE: `dev` (default) is quick,
    `ci` is reproducible (derandomize), `fuzz` digs deep. No deadline: the tokenizer's first call
    in a process is slow, and a wall-clock deadline would flake on 2 cores. The gate's markers are
    registered here too, so the suites run where no pyproject.toml lists them (a wheel install)."""
    import os

    config.addinivalue_line("markers", GOVERNANCE)
    for marker, description in MARKERS.items():
        config.addinivalue_line("markers", f"{marker}: {description}")

    try:
        from hypothesis import settings
    except ImportError:  # hypothesis is a test extra; the gate's property checks then fail on import
        return
    settings.register_profile("dev", max_examples=30, deadline=None)
    settings.register_profile("ci", derandomize=True, max_examples=50, deadline=None)
    settings.register_profile("fuzz", max_examples=2000, deadline=None)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


# --- governance.json ----------------------------------------------------------------------------------

_rows: dict[str, dict] = {}  # nodeid -> the check's row, this session's


def pytest_sessionstart(session):
    _rows.clear()


def pytest_runtest_logreport(report):
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if "governance" not in report.keywords:
            return
        props = dict(report.user_properties)
        message = ""
        if not report.passed:
            crash = getattr(report.longrepr, "reprcrash", None)
            message = crash.message if crash is not None else str(report.longrepr)
        _rows[report.nodeid] = {
            "check": report.nodeid.split("::")[-1], "marker": next((m for m in MARKERS if m in report.keywords), "governance"),
            "value": props.get("value"), "limit": props.get("limit"), "passed": bool(report.passed), "message": message[:2000],
        }


def pytest_sessionfinish(session, exitstatus):
    run = RunDir(session.config.getoption("--run-dir"))
    if not _rows or not run.root.is_dir():
        return
    checks = list(_rows.values())
    markers_run = sorted({c["marker"] for c in checks})
    complete = set(MARKERS) <= set(markers_run)
    manifest = json.loads(run.manifest.read_text()) if run.manifest.is_file() else {}
    write_json(run.governance, {
        "run": str(run.root), "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "passed": complete and int(exitstatus) == 0 and all(c["passed"] for c in checks),
        "complete": complete, "markers_run": markers_run, "pytest_exit_code": int(exitstatus),
        "dataset_hash": manifest.get("dataset_hash"), "model_hash": run.model_hash(),
        "policy": session.config.getoption("--policy"),
        "checks": checks,
    })


def pytest_terminal_summary(terminalreporter):
    """Each failed check whole (value, limit, what to do): pytest's own summary cuts lines at the
    terminal's width, mid-number."""
    failed = [c for c in _rows.values() if not c["passed"]]
    if failed:
        terminalreporter.section("governance: failed checks")
        for c in failed:
            terminalreporter.write_line(f"{c['marker']}/{c['check']}: value {c['value']}, limit {c['limit']}")
            terminalreporter.write_line(f"    {c['message']}")
