"""Packaging: the wheel holds the package's data folders, and building it prints no setuptools warning wall."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_recipes_templates_and_data_without_packaging_warnings(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-v", "-w", str(tmp_path),
                           str(ROOT)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert "would be ignored" not in log and "Package would be" not in log  # data folders declared as package data
    [wheel] = tmp_path.glob("repotune-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.relative_to(ROOT).as_posix() for folder in ("recipes", "templates", "data")
               for p in (ROOT / "pipeline" / folder).rglob("*") if p.is_file()}
    # every module of every sub-package (pyproject names the packages one by one: a new one must be added there)
    shipped |= {p.relative_to(ROOT).as_posix() for p in (ROOT / "pipeline").rglob("*.py")}
    shipped |= {f"pipeline/quality/{p.name}" for p in (ROOT / "quality").glob("*.py")}
    assert shipped and shipped <= names, sorted(shipped - names)
