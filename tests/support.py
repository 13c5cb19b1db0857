"""Helpers the tests import (`from support import ...`): a tiny model, fixture repositories.

Kept out of conftest.py: quality/ has a conftest.py too, and `from conftest import` would pick
whichever was imported first.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

PACKAGED = "packaged:all-MiniLM-L6-v2"


def build_tiny_model(path: Path, max_seq_length: int = 64, dropout: float = 0.1) -> Path:
    """A 2-layer BERT with the MiniLM vocabulary, random but seeded: fast, and real enough to train."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    from transformers import BertConfig, BertModel

    from pipeline.models import load_tokenizer, resolve_model

    torch.manual_seed(0)
    tokenizer = load_tokenizer(PACKAGED)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512, hidden_dropout_prob=dropout,
                        attention_probs_dropout_prob=dropout)
    raw = path / "hf"
    BertModel(config).save_pretrained(raw)
    tokenizer.save_pretrained(raw)
    transformer = Transformer(str(raw), max_seq_length=max_seq_length)
    model = SentenceTransformer(modules=[transformer, Pooling(transformer.get_embedding_dimension(), "mean"), Normalize()])
    model.save(str(path / "model"))
    assert resolve_model(str(path / "model"))
    return path / "model"


def write_files(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def git_init(root: Path, commit: bool = True) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}
    subprocess.run(["git", "init", "-q", str(root)], check=True, env=env)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True, env=env)
    if commit:
        subprocess.run(["git", "-C", str(root), "commit", "-qm", "init"], check=True, env=env)


# A small repository with every structure the pair miners look for, in code and in docs.
FIXTURE_FILES: dict[str, str] = {}
for _i, _topic in enumerate(["parser", "tokenizer", "cache", "network", "storage", "scheduler"]):
    FIXTURE_FILES[f"pkg/{_topic}.py"] = f'''"""The {_topic} module: helpers that handle {_topic} work for the package.

More detail about the {_topic} module lives here.
"""

import os


def load_{_topic}(path, retries=3):
    """Load the {_topic} configuration from a file on disk.

    Retries a few times when the file is busy.
    """
    for attempt in range(retries):
        if os.path.exists(path):
            return open(path).read()
    return None


class {_topic.title()}Manager:
    """Keep track of every {_topic} object the application creates."""

    def __init__(self):
        self.items = []

    def add_item(self, item, check=True):
        """Register one {_topic} item with the manager and return its index."""
        # validate the item before it is stored anywhere
        if check and item is None:
            raise ValueError("item must not be None")
        self.items.append(item)
        return len(self.items) - 1
'''
    FIXTURE_FILES[f"docs/{_topic}.md"] = f"""# The {_topic} guide

This guide explains how the {_topic} layer of the package works, step by step.

## How do I load {_topic} settings?

Call `load_{_topic}()` with a path to read the settings; it retries when the file is busy.

## Managing {_topic} items

Create a `{_topic.title()}Manager` and register each item with `add_item()`, which returns an index.
"""
FIXTURE_FILES["README.md"] = "# Fixture project\n\nA small project used by the tests.\n\n## Install\n\nRun pip install on the folder to get going quickly.\n"


def run_with_base_as_model(built_run: Path, dest: Path, settings: dict):
    """A copy of a built run whose 'model' is its base model saved as is (no training), with the search
    settings train would write: for tests of what reads a trained run (search, serve)."""
    import json
    import shutil

    from sentence_transformers import SentenceTransformer

    from pipeline.rundir import RunDir

    run = RunDir(dest)
    shutil.copytree(built_run, run.root)
    SentenceTransformer(run.read_recipe().train.base_model).save(str(run.model))
    # what train writes beside its settings: the dataset the model belongs to (evaluate, gate and publish check it)
    (run.model / "repotune.json").write_text(json.dumps({"dataset_hash": run.read_manifest()["dataset_hash"], **settings}))
    return run


def add_commit_pairs(run, pairs: dict[str, list[tuple[str, str]]]) -> None:
    """Add ``commit_definition`` pairs to a run's stored dataset: split -> [(subject, positive chunk id)],
    as the history stage would have mined them (for tests of what reads them: the chunk expansion)."""
    import shutil

    from datasets import DatasetDict, load_from_disk

    stored = load_from_disk(str(run.pairs))
    by_id = {r["id"]: r for r in load_from_disk(str(run.corpus))}
    grown = {}
    for split, ds in stored.items():
        for subject, cid in pairs.get(split, []):
            chunk = by_id[cid]
            ds = ds.add_item({"anchor": subject, "positive": chunk["text"], "pair_type": "commit_definition",
                              "path": chunk["path"], "anchor_kind": "code", "positive_kind": chunk["kind"],
                              "anchor_chunk_id": f"commit:{len(grown)}", "positive_chunk_id": cid, "kind": chunk["kind"]})
        grown[split] = ds
    tmp = run.pairs.with_name("pairs.grown")
    DatasetDict(grown).save_to_disk(str(tmp))
    shutil.rmtree(run.pairs)
    tmp.rename(run.pairs)
