"""The governance gate's fixtures: a run directory (``--run-dir``, default runs/latest), its
artifacts, the policy, and ``check``, which records value and limit for governance.json.

A missing artifact fails its check with the command that produces it; nothing is skipped. The gate's pytest plugin
(pipeline/publishing/pytest_plugin.py) writes governance.json at the end of a session that ran governance checks.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.rundir import RunDir

# --run-dir and --policy, the markers, and governance.json's writer are the gate's pytest plugin's
# (pipeline/publishing/pytest_plugin.py, installed with repotune).


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
