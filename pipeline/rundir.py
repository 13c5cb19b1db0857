"""The run directory (docs/run-directory.md): every path a run writes, and the JSON it reads back."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import RepotuneError
from .records import SETTINGS_FILE


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


HELDOUT = Path("history") / "heldout.jsonl"  # the history yardstick: the held-out commits, as question-set lines


def questions_path(spec: str, manifest: dict) -> Path:
    """A question set path as given (from the working directory), or else relative to the repository."""
    path = Path(spec).expanduser()
    if path.is_absolute() or path.is_file():
        return path.resolve()
    return Path(manifest["source"]["path"]) / path


@dataclass(frozen=True)
class RunDir:
    root: Path

    def __init__(self, root: str | Path):
        object.__setattr__(self, "root", Path(root))

    config = property(lambda self: self.root / "config.yaml")
    manifest = property(lambda self: self.root / "manifest.json")
    stats = property(lambda self: self.root / "stats")
    dropped = property(lambda self: self.root / "dropped")  # dropped/<stage>.jsonl: what each stage dropped, and why
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

    def drops(self, *stages: str) -> str:
        """The stages' counts from stats/ in words ("pairs kept 7, dropped balance=231"): an error's real cause."""
        parts = []
        for stage in stages:
            path = self.stats / f"{stage}.json"
            counts = json.loads(path.read_text()) if path.is_file() else {}
            dropped = ", ".join(f"{k.removeprefix('dropped_')}={n}" for k, n in counts.items() if k.startswith("dropped_") and n)
            if counts:
                parts.append(f"{stage} kept {counts.get('kept', 0)}, dropped {dropped or 'nothing'}")
        return "; ".join(parts)

    def model_hash(self) -> str | None:
        weights = sorted(self.model.glob("*.safetensors")) if self.model.is_dir() else []
        return sha256_file(weights[0]) if weights else None

    def provenance_problem(self, measured: bool = True) -> str | None:
        """Why the run's dataset, model and metrics do not belong together, in one line naming the command to rerun,
        or None. The model records the dataset it was trained on (its repotune.json), metrics.json the model and
        dataset it measured: a rebuilt dataset or a retrained model makes the older files stale, and the gate and
        publish refuse them (what is published is what was trained and measured). ``measured=False``: the model only."""
        dataset = self.read_manifest().get("dataset_hash")
        settings = self.model / SETTINGS_FILE
        if settings.is_file():
            trained_on = json.loads(settings.read_text()).get("dataset_hash")
            if trained_on != dataset:
                return (f"the model in {self.model} was trained on dataset {str(trained_on)[:12]}, and the run now holds "
                        f"dataset {str(dataset)[:12]} (rebuilt since): run `repotune train {self.root} --fresh`, then "
                        f"`repotune evaluate {self.root}`")
        if measured and self.metrics.is_file():
            metrics = json.loads(self.metrics.read_text())
            model_hash = self.model_hash()  # a sha256 of the weights file: once
            if metrics.get("model_hash") != model_hash or metrics.get("dataset_hash") != dataset:
                what = "model" if metrics.get("model_hash") != model_hash else "dataset"
                return (f"{self.metrics} measured another {what} than the run holds now ({what} "
                        f"{str(metrics.get(what + '_hash'))[:12]}): run `repotune evaluate {self.root}`")
        return None


# --- the files of a run that the gate and publish scan for secrets, and the values they may allow ---

_ID_KEY = re.compile(r"(hash|revision|sha|commit|fingerprint)$", re.I)


def identifiers(node) -> set[str]:
    """Hex values of identifier keys (dataset_hash, dataset_revision, commit, ...) in JSON that the
    pipeline or its libraries wrote (manifest, mteb results): content addresses that detect-secrets
    calls high-entropy strings, and that are not secrets."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and _ID_KEY.search(key) and re.fullmatch(r"[0-9a-f]{7,64}", value):
                found.add(value)
            else:
                found |= identifiers(value)
    elif isinstance(node, list):
        for item in node:
            found |= identifiers(item)
    return found


def known_identifiers(manifest: dict, model_hash: str | None, folders) -> set[str]:
    """The exact values a scan of a run (the gate) or of its upload folders (publish) may allow:
    the manifest's identifiers, the model hash, and the identifiers in every JSON / JSONL file below
    ``folders``. One rule for both, so publish and the gate agree on what is a secret."""
    allow = identifiers(manifest) | {model_hash or ""}
    for folder in folders:
        for path in folder.rglob("*.json*"):
            text = path.read_text(errors="replace")
            for line in text.splitlines() if path.suffix == ".jsonl" else [text]:
                with contextlib.suppress(ValueError):
                    allow |= identifiers(json.loads(line))
    return allow - {""}


TEXT_SUFFIXES = {".md", ".json", ".jsonl", ".yaml", ".yml", ".txt", ".csv", ".py", ".cfg", ".toml"}
MAX_TEXT_BYTES = 20_000_000  # bytes: a larger file without a text suffix is taken as binary (weights, archives)


def is_text_file(path) -> bool:
    """Whether a file of a run is text to scan: a text suffix, or small, NUL-free and valid UTF-8.
    The gate and publish scan the same files by this one rule."""
    if path.suffix in TEXT_SUFFIXES:
        return True
    if path.stat().st_size > MAX_TEXT_BYTES:
        return False
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
