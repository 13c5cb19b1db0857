"""The governance gate's fixtures: a run directory (``--run-dir``, default runs/latest), its
artifacts, the policy, and ``check``, which records value and limit for governance.json.

A missing artifact fails its check with the command that produces it; nothing is skipped.
At the end of a session that ran governance checks, governance.json is written into the run.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.publishing.gate import MARKERS
from pipeline.rundir import RunDir, write_json

# --run-dir and --policy are registered by pipeline/pytest_plugin.py (an installed pytest plugin).


def pytest_configure(config):
    """A pytest from another environment (one without repotune installed) lacks the plugin and its options:
    say in one line which command to run instead of failing later with a traceback."""
    try:  # the suites' imports: a python that finds the checkout's metadata but not its dependencies fails here
        import pipeline.ingest.workers  # noqa: F401
        import pipeline.secrets  # noqa: F401
        missing = None
    except ImportError as err:
        missing = err.name
    if missing or not config.pluginmanager.hasplugin("repotune"):
        lacks = f" (it lacks {missing})" if missing else ""
        raise pytest.UsageError(f"this pytest ({sys.executable}) is not the one repotune is installed in{lacks}: run "
                                "`.venv/bin/python -m pytest -m governance` (after `make install`), or `make gate`")


@pytest.fixture(scope="session")
def run(request) -> RunDir:
    run = RunDir(request.config.getoption("--run-dir"))
    if not run.root.is_dir():
        pytest.fail(f"run directory {run.root} does not exist: run `make train` or `repotune run REPO --out {run.root}` first, "
                    "or pass --run-dir", pytrace=False)
    if run.manifest.is_file() and (stale := run.provenance_problem()) is not None:
        # one line, not one failure per check: the checks would judge files that do not belong together
        pytest.exit(f"the gate judges only what was trained and measured together: {stale}", returncode=2)
    return run


@pytest.fixture(scope="session")
def policy(request) -> dict:
    return yaml.safe_load(Path(request.config.getoption("--policy")).read_text())


def _need(path: Path, command: str):
    if not path.exists():
        pytest.fail(f"{path} is missing: run `{command}` first", pytrace=False)
    return path


@pytest.fixture(scope="session")
def manifest(run) -> dict:
    return json.loads(_need(run.manifest, f"repotune build REPO --out {run.root}").read_text())


@pytest.fixture(scope="session")
def metrics(run) -> dict:
    return json.loads(_need(run.metrics, f"repotune evaluate {run.root}").read_text())


@pytest.fixture(scope="session")
def pairs(run):
    from datasets import load_from_disk

    return load_from_disk(str(_need(run.pairs, f"repotune build REPO --out {run.root}")))


@pytest.fixture(scope="session")
def corpus(run):
    from datasets import load_from_disk

    return load_from_disk(str(_need(run.corpus, f"repotune build REPO --out {run.root}")))


@pytest.fixture
def check(record_property):
    """check(value, limit, ok, message): record value and limit for governance.json, then assert."""

    def _check(value, limit, ok: bool, message: str) -> None:
        record_property("value", value)
        record_property("limit", limit)
        assert ok, f"{message} (value {value}, limit {limit})"

    return _check


# --- governance.json ----------------------------------------------------------------------------------

_rows: dict[str, dict] = {}


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
        "run": str(run.root), "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
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
