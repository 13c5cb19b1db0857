"""The run directory (README "The run directory"): every path a run writes, and the JSON it reads back."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import RepotuneError


class RunError(RepotuneError, RuntimeError):
    """A run directory lacks what a command needs; the message names the command that makes it."""


def write_json(path: Path, data: Any) -> None:
    """Atomic: a crash never leaves half a JSON file that looks complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2, sort_keys=False, default=str)
        f.write("\n")
    os.replace(tmp, path)


def read_json(path: Path, made_by: str) -> Any:
    if not path.is_file():
        raise RunError(f"{path} is missing: run `{made_by}` first")
    return json.loads(path.read_text())


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class RunDir:
    root: Path

    def __init__(self, root: str | Path):
        object.__setattr__(self, "root", Path(root))

    config = property(lambda self: self.root / "config.yaml")
    manifest = property(lambda self: self.root / "manifest.json")
    stats = property(lambda self: self.root / "stats")
    secrets_report = property(lambda self: self.root / "secrets_report.json")
    dataset = property(lambda self: self.root / "dataset")
    pairs = property(lambda self: self.root / "dataset" / "pairs")
    corpus = property(lambda self: self.root / "dataset" / "corpus")
    checkpoints = property(lambda self: self.root / "checkpoints")
    model = property(lambda self: self.root / "model")
    metrics = property(lambda self: self.root / "metrics.json")
    report = property(lambda self: self.root / "report.md")
    plots = property(lambda self: self.root / "plots")
    governance = property(lambda self: self.root / "governance.json")
    publish = property(lambda self: self.root / "publish")

    @property
    def questions(self) -> Path:
        """The run's question set: the file ``evaluate.questions`` in config.yaml names (resolved as evaluate
        resolves it), else ``questions.jsonl`` here, where the labelling view of `repotune serve` starts one."""
        from .evaluation.questions import questions_path  # questions imports split and its dependencies: only when asked

        spec = self.read_recipe().evaluate.questions
        return questions_path(spec, self.read_manifest()) if spec else self.root / "questions.jsonl"

    def read_manifest(self) -> dict:
        return read_json(self.manifest, f"repotune build REPO --out {self.root}")

    def update_manifest(self, **fields: Any) -> dict:
        manifest = json.loads(self.manifest.read_text()) if self.manifest.is_file() else {}
        for key, value in fields.items():
            if isinstance(value, dict) and isinstance(manifest.get(key), dict):
                manifest[key].update(value)
            else:
                manifest[key] = value
        write_json(self.manifest, manifest)
        return manifest

    def read_recipe(self):
        """The resolved recipe (a ``config.Recipe``) the run was built with: its config.yaml."""
        import yaml

        from .config import recipe_from_dict

        if not self.config.is_file():
            raise RunError(f"{self.config} is missing: run `repotune build REPO --out {self.root}` first")
        return recipe_from_dict(yaml.safe_load(self.config.read_text()))

    def model_hash(self) -> str | None:
        weights = sorted(self.model.glob("*.safetensors")) if self.model.is_dir() else []
        return sha256_file(weights[0]) if weights else None
