"""Shared fixtures: offline settings, one tiny model per session, fixture repositories in tmp_path."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

# Nothing here may reach the Hugging Face Hub: set before any HF library is imported by a test.
for _key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
    os.environ.setdefault(_key, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from support import FIXTURE_FILES, build_tiny_model, git_init, write_files  # noqa: E402


@pytest.fixture
def repotune_log(caplog):
    """caplog, with repotune's own logger in it. A command run in-process (`cli.main`, the session's built run)
    gives that logger a terminal handler and stops it propagating, so the root handler caplog reads sees none of
    it (pytest 9's at_level happens to reach it, 8's does not): hand caplog's handler to it directly."""
    log = logging.getLogger("repotune")
    log.addHandler(caplog.handler)
    yield caplog
    log.removeHandler(caplog.handler)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    return str(build_tiny_model(tmp_path_factory.mktemp("tiny")))


@pytest.fixture
def fixture_repo(tmp_path) -> Path:
    """A git repository (one commit) with code and docs in every shape the miners know."""
    root = write_files(tmp_path / "repo", FIXTURE_FILES)
    git_init(root)
    return root


def pytest_ignore_collect(collection_path, config):
    """`pytest -m governance` gates a run: the unit tests are not even imported then."""
    markexpr = config.getoption("markexpr") or ""
    if "governance" in markexpr and "not governance" not in markexpr:
        return True
    return None


@pytest.fixture(scope="session")
def built_run(tmp_path_factory, tiny_model) -> Path:
    """The fixture repository built once with the smoke recipe and the tiny model (no training).
    Tests copy it before changing anything."""
    from pipeline.build import build
    from pipeline.config import load_recipe

    root = tmp_path_factory.mktemp("built")
    repo = write_files(root / "repo", FIXTURE_FILES)
    git_init(repo)
    build(repo, root / "run", load_recipe("smoke", [f"train.base_model={tiny_model}", "train.batch_size=8", "evaluate.mteb=false"]))
    return root / "run"


# Hypothesis profiles (dev, ci, fuzz by HYPOTHESIS_PROFILE) are registered by pipeline/publishing/pytest_plugin.py,
# so the unit tests and the gate's property checks share them.
