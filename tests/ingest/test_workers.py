"""workers: the per-file stages in worker processes give what one process gives, in the files' order."""

from __future__ import annotations

import dataclasses

from support import FIXTURE_FILES, write_files

from pipeline.config import load_recipe
from pipeline.ingest.collect import collect
from pipeline.ingest.workers import process_files, worker_count
from pipeline.stage import StageStats


def results(repo, tiny_model, workers: int):
    recipe = load_recipe("smoke", [f"train.base_model={tiny_model}", f"build.workers={workers}"])
    return list(process_files(collect(repo, recipe.collect, StageStats("collect")), recipe))


def comparable(result) -> dict:
    fields = dataclasses.asdict(result)
    fields["signature"] = list(result.signature.hashvalues) if result.signature is not None else None
    fields["chunks"] = [(c, c.meta) for c in result.chunks]
    fields.pop("seconds")
    return fields


def test_two_workers_give_what_one_process_gives_in_order(tmp_path, tiny_model):
    files = {**FIXTURE_FILES, "blob.py": "x\0y", "empty.py": "   \n", "min.js": "x" * 5000}
    repo = write_files(tmp_path / "repo", files)
    one, two = results(repo, tiny_model, 1), results(repo, tiny_model, 2)
    assert [r.path for r in one] == [r.path for r in two] == sorted(r.path for r in one)
    assert [comparable(r) for r in one] == [comparable(r) for r in two]
    dropped = {r.path: r.stats["clean"] for r in one if not r.loaded}
    assert dropped["blob.py"] == {"dropped_binary": 1} and dropped["empty.py"] == {"dropped_empty": 1}
    assert dropped["min.js"] == {"dropped_max_line_length": 1}
    kept = [r for r in one if r.kept]
    assert kept and all(len(r.chunk_shingles) == len(r.chunks) > 0 for r in kept)
    assert all(set(r.seconds) == {"clean", "secrets", "chunk", "split"} for r in kept)


def test_worker_count():
    assert worker_count(load_recipe("smoke", ["build.workers=3"])) == 3
    assert worker_count(load_recipe("smoke")) >= 1  # 0: one per CPU core this process may use
