"""The CI scripts' own logic (.ci/lib.sh): a failing step fails CI, whatever its last line does."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("output, code, expected", [
    ("== 1 failed, 779 passed in 737.65s ==", 1, "FAILED (exit 1)"),  # a failed test: the pipeline's status
    ("== no tests ran in 0.01s ==", 5, "FAILED (exit 5)"),
    ("== 780 passed in 737.65s ==", 0, "passed"),
])
def test_make_test_step_fails_when_a_test_fails(tmp_path, output, code, expected):
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "make").write_text(f"#!/bin/sh\necho '{output}'\nexit {code}\n")
    (stub / "make").chmod(0o755)
    script = f'set -euo pipefail; export PATH="{stub}:$PATH"; source .ci/lib.sh; step "make test" make_test'
    proc = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "REPOTUNE_CI_CACHE": "off"})
    assert f"== ci: {expected} in" in proc.stderr, proc.stderr
    assert (proc.returncode == 0) == (expected == "passed")
