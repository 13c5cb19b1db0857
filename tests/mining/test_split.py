"""split: whole files held out, seeded, stratified by kind; leaks removed and counted."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from pipeline.build import build
from pipeline.common import file_of
from pipeline.config import CleanConfig, SplitConfig, load_recipe
from pipeline.mining.split import CorpusIndex, holdout_files, split_pairs
from pipeline.records import Chunk, Pair, chunk_id
from pipeline.stage import StageStats


def make_chunk(path: str, text: str, kind: str | None = None, start: int = 1) -> Chunk:
    kind = kind or ("docs" if path.endswith(".md") or "#markdown" in path else "code")
    end = start + text.count("\n")
    return Chunk(chunk_id(path, start, end, text), text, path, kind, "x", start, end)


def make_pair(anchor: Chunk, positive: Chunk, anchor_text: str = "", positive_text: str = "") -> Pair:
    return Pair(anchor_text or f"about {positive.path}", positive_text or positive.text, "t", positive.path,
                anchor.kind, positive.kind, anchor.id, positive.id, kind=positive.kind)


def words(seed: int, n: int = 40) -> str:
    return " ".join(f"w{(seed * 7919 + i * 104729) % 100003}" for i in range(n))


def kinds(chunks: list[Chunk]) -> dict[str, set[str]]:
    return CorpusIndex.of(chunks, CleanConfig()).files_by_kind


# --- holdout_files -------------------------------------------------------------------------------

def test_holdout_files_are_seeded_and_stratified_by_kind():
    chunks = [make_chunk(f"pkg/m{i}.py", words(i)) for i in range(10)] + [make_chunk(f"docs/d{i}.md", words(100 + i)) for i in range(5)]
    config = SplitConfig(holdout_fraction=0.2, seed=3)
    held = holdout_files(kinds(chunks), config)
    assert len([f for f in held if f.endswith(".py")]) == math.ceil(10 * 0.2)
    assert len([f for f in held if f.endswith(".md")]) == math.ceil(5 * 0.2)
    assert holdout_files(kinds(chunks), config) == held  # same seed, same files
    assert holdout_files(kinds(list(reversed(chunks))), config) == held  # chunk order does not matter
    others = {frozenset(holdout_files(kinds(chunks), SplitConfig(holdout_fraction=0.2, seed=s))) for s in range(10)}
    assert len(others) > 1  # the seed matters


def test_a_kind_with_a_single_file_is_not_held_out():
    chunks = [make_chunk(f"pkg/m{i}.py", words(i)) for i in range(4)] + [make_chunk("README.md", words(99))]
    held = holdout_files(kinds(chunks), SplitConfig(holdout_fraction=0.5, seed=0))
    assert "README.md" not in held and len(held) == 2


def test_notebook_cells_are_one_file():
    assert file_of("nb/x.ipynb#markdown") == file_of("nb/x.ipynb#python") == "nb/x.ipynb"
    chunks = [make_chunk("nb/a.ipynb#markdown", words(1), "docs"), make_chunk("nb/a.ipynb#python", words(2), "code"),
              make_chunk("nb/b.ipynb#markdown", words(3), "docs"), make_chunk("nb/b.ipynb#python", words(4), "code")]
    held = holdout_files(kinds(chunks), SplitConfig(holdout_fraction=0.5, seed=1))
    assert held and held <= {"nb/a.ipynb", "nb/b.ipynb"}


# --- split_pairs ---------------------------------------------------------------------------------

def test_pairs_follow_their_files_and_cross_split_pairs_are_dropped():
    code = [make_chunk(f"pkg/m{i}.py", words(i)) for i in range(6)]
    docs = [make_chunk(f"docs/d{i}.md", words(50 + i)) for i in range(6)]
    chunks = code + docs
    same_file = [make_pair(c, c) for c in chunks]
    cross = [make_pair(d, c) for d, c in zip(docs, code)]  # a doc mention -> a code definition
    stats = StageStats("split")
    config = SplitConfig(holdout_fraction=0.34, seed=5)
    train, holdout, held = split_pairs(same_file + cross, CorpusIndex.of(chunks, CleanConfig()), config, CleanConfig(), stats)
    by_id = {c.id: c for c in chunks}
    for pairs, expect_held in ((train, False), (holdout, True)):
        for p in pairs:
            for cid in (p.anchor_chunk_id, p.positive_chunk_id):
                assert (file_of(by_id[cid].path) in held) is expect_held
    straddling = [p for p in cross if (file_of(by_id[p.anchor_chunk_id].path) in held) != (p.path in held)]
    assert straddling  # the seed was chosen so that some do
    assert stats["dropped_straddles_split"] == len(straddling)
    assert len(train) + len(holdout) + len(straddling) == len(same_file) + len(cross)
    assert stats["train"] == len(train) and stats["holdout"] == len(holdout) and stats["holdout_files"] == len(held)
    assert stats["holdout_code"] > 0 and stats["holdout_docs"] > 0


def test_a_small_holdout_is_topped_up_with_whole_files_within_a_third_of_the_pairs():
    """Code-heavy: 20 code files (one pair each, except two of 12 and 8 pairs) and 2 docs files. 15 % of the files
    holds out too few pairs to measure; more files are held out, seeded, until 10 pairs, never past a third."""
    code = [make_chunk(f"pkg/m{i}.py", words(i)) for i in range(20)]
    docs = [make_chunk(f"docs/d{i}.md", words(100 + i)) for i in range(2)]
    pairs = [make_pair(c, c, anchor_text=f"q{c.path}") for c in code + docs]
    pairs += [make_pair(code[0], code[0], anchor_text=f"more {i}") for i in range(11)]
    pairs += [make_pair(code[1], code[1], anchor_text=f"other {i}") for i in range(7)]
    index = CorpusIndex.of(code + docs, CleanConfig())

    def run(min_pairs: int):
        stats = StageStats("split")
        train, holdout, held = split_pairs(pairs, index, SplitConfig(seed=3, min_holdout_pairs=min_pairs), CleanConfig(), stats)
        return train, holdout, held, stats

    _, off, held_off, _ = run(0)
    assert len(off) < 10  # the fraction alone: 3 code files and 1 docs file hold too few pairs
    train, holdout, held, stats = run(10)
    assert held > held_off and 10 <= len(holdout) <= len(pairs) / 3
    assert stats["holdout_files_topped_up"] == len(held - held_off) and len(train) + len(holdout) == len(pairs)
    assert all(file_of(p.path) in held for p in holdout) and not any(file_of(p.path) in held for p in train)
    assert run(10)[2] == held  # seeded
    _, capped, _, _ = run(30)  # cannot reach 30 within a third of 42 pairs: stops at the cap
    assert len(capped) <= len(pairs) / 3


def test_near_duplicate_holdout_pairs_are_removed_and_counted():
    chunks = [make_chunk(f"pkg/m{i}.py", words(i)) for i in range(4)]
    config = SplitConfig(holdout_fraction=0.25, seed=0)
    held = holdout_files(kinds(chunks), config)
    (held_file,) = held
    train_chunk = next(c for c in chunks if c.path not in held)
    # the held-out file repeats a training chunk, one word changed
    copy_text = train_chunk.text.replace(train_chunk.text.split()[-1], "changed")
    chunks = [c if c.path != held_file else make_chunk(held_file, copy_text) for c in chunks]
    extra = make_chunk(held_file, words(777), start=50)
    chunks.append(extra)
    pairs = [make_pair(c, c) for c in chunks]
    stats = StageStats("split")
    train, holdout, held_again = split_pairs(pairs, CorpusIndex.of(chunks, CleanConfig()), config, CleanConfig(), stats)
    assert held_again == held
    assert [p.positive for p in holdout] == [extra.text]  # the near copy went, the original holdout pair stayed
    assert stats["dropped_holdout_near_duplicate_of_train"] == 1
    assert len(train) == 3


def test_split_is_deterministic():
    chunks = [make_chunk(f"pkg/m{i}.py", words(i)) for i in range(8)] + [make_chunk(f"docs/d{i}.md", words(40 + i)) for i in range(8)]
    pairs = [make_pair(c, c) for c in chunks]
    first = split_pairs(pairs, CorpusIndex.of(chunks, CleanConfig()), SplitConfig(), CleanConfig(), StageStats("split"))
    second = split_pairs(pairs, CorpusIndex.of(chunks, CleanConfig()), SplitConfig(), CleanConfig(), StageStats("split"))
    assert first == second


# --- on a built run ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_model):
    from support import FIXTURE_FILES, git_init, write_files

    root = write_files(tmp_path_factory.mktemp("split") / "repo", FIXTURE_FILES)
    git_init(root)
    runs = tmp_path_factory.mktemp("runs")
    recipe = load_recipe("smoke", [f"train.base_model={tiny_model}"])
    first = build(root, runs / "a", recipe)
    second = build(root, runs / "b", recipe)
    return root, runs, first, second, tiny_model


def test_run_holds_out_whole_files(built):
    from datasets import load_from_disk

    _, runs, _, _, _ = built
    run = runs / "a"
    pairs = load_from_disk(str(run / "dataset" / "pairs"))
    corpus = load_from_disk(str(run / "dataset" / "corpus"))
    split_of_file: dict[str, set[str]] = {}
    for row in corpus:
        split_of_file.setdefault(file_of(row["path"]), set()).add(row["split"])
    assert all(len(s) == 1 for s in split_of_file.values())  # no file in both
    file_of_chunk = {row["id"]: file_of(row["path"]) for row in corpus}
    held = {f for f, s in split_of_file.items() if s == {"holdout"}}
    for split, expect_held in (("train", False), ("holdout", True)):
        assert len(pairs[split]) > 0
        for row in pairs[split]:
            for cid in (row["anchor_chunk_id"], row["positive_chunk_id"]):
                assert (file_of_chunk[cid] in held) is expect_held, (split, row["pair_type"], cid)


def test_run_holdout_is_stratified(built):
    from datasets import load_from_disk

    _, runs, _, _, _ = built
    holdout = load_from_disk(str(runs / "a" / "dataset" / "pairs"))["holdout"]
    assert set(holdout["kind"]) == {"code", "docs"}
    stats = json.loads((runs / "a" / "stats" / "split.json").read_text())
    assert stats["holdout_code"] > 0 and stats["holdout_docs"] > 0


def test_same_seed_same_dataset_hash(built):
    _, runs, first, second, _ = built
    assert first["dataset_hash"] == second["dataset_hash"]
    assert len(first["dataset_hash"]) == 64
    a = json.loads((runs / "a" / "stats" / "split.json").read_text())
    b = json.loads((runs / "b" / "stats" / "split.json").read_text())
    assert a == b


def test_another_seed_another_split(built, tmp_path: Path):
    root, _, first, _, tiny_model = built
    hashes = set()
    for seed in (1, 2, 3):
        manifest = build(root, tmp_path / f"s{seed}", load_recipe("smoke", [f"train.base_model={tiny_model}", f"split.seed={seed}"]))
        hashes.add(manifest["dataset_hash"])
    assert len(hashes | {first["dataset_hash"]}) > 1  # the seed changes which files are held out


def test_the_shingle_prefilter_changes_nothing(monkeypatch):
    """A training chunk that shares no shingle with any holdout positive is not looked up: with the
    prefilter off (every chunk signed and queried) the split is the same, near copies included."""
    import pipeline.mining.split as split

    chunks = [make_chunk(f"pkg/m{i}.py", words(i)) for i in range(12)]
    config = SplitConfig(holdout_fraction=0.25, seed=0)
    held = holdout_files(kinds(chunks), config)
    near = [make_chunk(held_file, next(c for c in chunks if c.path not in held).text.replace("w", "v", 1), start=90)
            for held_file in sorted(held)]  # one near copy of a training chunk in each held-out file
    chunks += near
    pairs = [make_pair(c, c) for c in chunks]
    results = []
    for prefilter in (True, False):
        monkeypatch.setattr(split, "disjoint_means_no_shared_band", lambda config, on=prefilter: on)
        stats = StageStats("split")
        results.append((split_pairs(pairs, CorpusIndex.of(chunks, CleanConfig()), config, CleanConfig(), stats), dict(stats)))
    assert results[0] == results[1]
    assert results[0][1]["dropped_holdout_near_duplicate_of_train"] == len(near)


def test_disjoint_shingle_sets_share_no_minhash_value():
    """Why the prefilter is exact: datasketch's affine permutations are bijections of the 32-bit
    hashes, so two sets without a common hash have no common minimum, in any band."""
    import random

    from pipeline.ingest.clean import disjoint_means_no_shared_band, minhash_of_hashes

    config = CleanConfig()
    assert disjoint_means_no_shared_band(config)
    rng = random.Random(0)
    for _ in range(200):
        values = rng.sample(range(2**32), rng.randint(2, 60))
        cut = rng.randint(1, len(values) - 1)
        a, b = minhash_of_hashes(values[:cut], config), minhash_of_hashes(values[cut:], config)
        assert not (a.hashvalues == b.hashvalues).any()
