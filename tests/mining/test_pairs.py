"""pairs: each miner on the fixture repository, and the rules that drop (and count) bad pairs."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from pathlib import Path

import pytest
from support import FIXTURE_FILES

from pipeline.config import DEFAULT_PAIR_TYPES, CleanConfig, CollectConfig, PairsConfig, SecretsConfig
from pipeline.ingest.chunk import Chunker, TokenCounter, chunk_files
from pipeline.ingest.clean import clean
from pipeline.ingest.collect import classify, collect
from pipeline.mining.pairs import MINERS, balance, mine_pairs
from pipeline.models import load_tokenizer
from pipeline.records import Chunk, Pair, SourceFile
from pipeline.secrets import redact_secrets
from pipeline.stage import StageStats


@lru_cache(maxsize=1)
def counter() -> TokenCounter:
    return TokenCounter(load_tokenizer("packaged:all-MiniLM-L6-v2"))


def repo_chunks(root: Path, max_tokens: int = 128) -> list[Chunk]:
    """collect -> clean -> secrets -> chunk, as build runs them."""
    files = collect(root, CollectConfig(), StageStats("collect"))
    files = clean(files, CleanConfig(), StageStats("clean"))
    files = redact_secrets(files, SecretsConfig(), StageStats("secrets"), [])
    return list(chunk_files(files, Chunker(counter(), max_tokens), min_chars=20))


def literal_chunks(files: dict[str, str], max_tokens: int = 128) -> list[Chunk]:
    sources = [SourceFile(path, *classify(path), text=text) for path, text in files.items()]
    return list(chunk_files(sources, Chunker(counter(), max_tokens), min_chars=20))


def mine(chunks: list[Chunk], **config) -> tuple[list[Pair], StageStats]:
    stats = StageStats("pairs")
    return mine_pairs(chunks, PairsConfig(**config), stats), stats


@pytest.fixture(scope="module")
def fixture_pairs(tmp_path_factory) -> tuple[list[Pair], StageStats, list[Chunk]]:
    from support import git_init, write_files

    root = write_files(tmp_path_factory.mktemp("pairs") / "repo", FIXTURE_FILES)
    git_init(root)
    chunks = repo_chunks(root)
    pairs, stats = mine(chunks)
    return pairs, stats, chunks


def of_type(pairs: list[Pair], pair_type: str) -> list[Pair]:
    return [p for p in pairs if p.pair_type == pair_type]


# --- each miner on the fixture repository ---------------------------------------------------------

def test_every_pair_type_is_mined(fixture_pairs):
    pairs, stats, _ = fixture_pairs
    assert set(Counter(p.pair_type for p in pairs)) == set(DEFAULT_PAIR_TYPES)  # the opt-in miners are tested below
    assert stats["kept"] == len(pairs)
    assert sum(stats[f"type_{t}"] for t in MINERS) == len(pairs)
    assert stats["kind_code"] + stats["kind_docs"] == len(pairs)


def test_docstring_code_positive_has_no_docstring(fixture_pairs):
    pairs, _, _ = fixture_pairs
    load = next(p for p in of_type(pairs, "docstring_code") if p.path == "pkg/parser.py" and "load_parser" in p.positive)
    assert load.anchor == "Load the parser configuration from a file on disk."  # the first paragraph only
    assert load.positive.startswith("def load_parser(path, retries=3):")
    assert "Load the parser configuration" not in load.positive and '"""' not in load.positive
    assert "return open(path).read()" in load.positive
    assert (load.anchor_kind, load.positive_kind, load.kind) == ("code", "code", "code")
    for p in of_type(pairs, "docstring_code"):
        assert p.anchor not in p.positive


def test_heading_section(fixture_pairs):
    pairs, _, _ = fixture_pairs
    section = next(p for p in of_type(pairs, "heading_section") if p.anchor == "The parser guide > How do I load parser settings?")
    assert section.positive == "Call `load_parser()` with a path to read the settings; it retries when the file is busy."
    assert section.path == "docs/parser.md" and section.kind == "docs"


@pytest.mark.parametrize("max_tokens", [64, 128])
def test_mention_definition_links_a_doc_mention_to_the_definition(fixture_repo, max_tokens):
    # at 64 tokens load_parser spans two chunks; it is still one definition
    pairs, _ = mine(repo_chunks(fixture_repo, max_tokens), types=["mention_definition"])
    mention = next(p for p in pairs if "`load_parser()`" in p.anchor)
    assert mention.anchor.startswith("Call `load_parser()` with a path")
    assert mention.positive.startswith("def load_parser(path, retries=3):")
    assert (mention.anchor_kind, mention.positive_kind) == ("docs", "code")
    assert mention.path == "pkg/parser.py" and mention.anchor_chunk_id.startswith("docs/parser.md:")
    # add_item() is defined in every module: ambiguous, so never linked
    assert not any("add_item()" in p.anchor and "add_item" in p.positive.split("(")[0] for p in pairs)


def test_comment_block(fixture_pairs):
    pairs, _, _ = fixture_pairs
    comment = of_type(pairs, "comment_block")
    assert len(comment) == 1  # the same comment and block in every module: duplicates dropped
    assert comment[0].anchor == "validate the item before it is stored anywhere"
    assert comment[0].positive.lstrip().startswith("if check and item is None:")
    assert "validate" not in comment[0].positive


def test_module_summary(fixture_pairs):
    pairs, _, _ = fixture_pairs
    summary = next(p for p in of_type(pairs, "module_summary") if p.path == "pkg/parser.py")
    assert summary.anchor == "The parser module: helpers that handle parser work for the package."
    assert summary.positive == "module pkg.parser: def load_parser(path, retries=3); class ParserManager"


def test_pairs_are_deterministic(fixture_pairs):
    pairs, _, chunks = fixture_pairs
    again, _ = mine(chunks)
    assert again == pairs


# --- the rules that drop pairs -------------------------------------------------------------------

def test_verbatim_pairs_are_dropped_and_counted():
    chunks = literal_chunks({
        "pkg/echo.py": '''def echo_value(value):
    """Echo the given value."""
    # Echo the given value.
    print(value)
    log(value)
    return value
''',
        "docs/usage.md": "# Usage\n\nUsage is simple: call the tool with a folder to index it.\n",
    })
    pairs, stats = mine(chunks, types=["docstring_code", "heading_section"])
    assert pairs == []
    assert stats["dropped_verbatim"] == 2  # docstring inside the body; heading word inside the section


def test_duplicate_pairs_are_dropped_and_counted():
    block = "# normalise the path before it is used\npath = os.path.abspath(path)\npath = path.rstrip('/')\n"
    chunks = literal_chunks({f"pkg/m{i}.py": f"import os\n\n\ndef f{i}(path):\n    {block.replace(chr(10), chr(10) + '    ')}\n    return path\n" for i in range(3)})
    pairs, stats = mine(chunks, types=["comment_block"])
    assert len(pairs) == 1 and stats["dropped_duplicate"] == 2
    assert stats["kept"] == 1


def test_test_functions_are_skipped():
    body = '''def {name}(self):
    """Check that the parser reads the settings file from disk."""
    data = load_settings("x")
    assert data is not None
    assert data["a"] == 1
'''
    chunks = literal_chunks({
        "pkg/mod.py": body.format(name="test_reads_settings") + "\n\n" + body.format(name="reads_settings"),
        "tests/check_parser.py": body.format(name="check_reads_settings"),
        "pkg/test_parser.py": body.format(name="parser_reads"),
        "pkg/suite.py": "class TestParser:\n" + "\n".join("    " + line for line in body.format(name="helper").split("\n")),
    })
    pairs, _ = mine(chunks, types=["docstring_code"])
    assert [(p.path, p.positive.split("(")[0].strip()) for p in pairs] == [("pkg/mod.py", "def reads_settings")]


def test_short_docstrings_and_bodies_are_skipped():
    chunks = literal_chunks({"pkg/a.py": '''def short_doc(x):
    """Return x."""
    y = x
    z = y
    return z


def short_body(x):
    """Return the value given, unchanged in every way."""
    return x
'''})
    pairs, _ = mine(chunks, types=["docstring_code"])
    assert pairs == []
    assert mine(chunks, types=["docstring_code"], min_docstring_tokens=2, min_body_lines=1)[0]


def test_only_enabled_types_are_mined(fixture_pairs):
    _, _, chunks = fixture_pairs
    pairs, stats = mine(chunks, types=["module_summary"])
    assert {p.pair_type for p in pairs} == {"module_summary"}
    assert stats["type_docstring_code"] == 0


# --- balance -------------------------------------------------------------------------------------

def _pairs(n_code: int, n_docs: int) -> list[Pair]:
    return [Pair(f"a{i}", f"p{i}", "t", f"f{i}", k, k, f"a{i}", f"p{i}", kind=k)
            for i, k in enumerate(["code"] * n_code + ["docs"] * n_docs)]


@pytest.mark.parametrize("n_code, n_docs, share", [(40, 10, 0.5), (10, 40, 0.5), (60, 20, 0.6), (10, 50, 0.25)])
def test_balance_reaches_the_requested_share(n_code, n_docs, share):
    stats = StageStats("pairs")
    stats["kept"] = n_code + n_docs
    out = balance(_pairs(n_code, n_docs), share, stats, seed=7)
    code = sum(p.kind == "code" for p in out)
    assert code / len(out) == pytest.approx(share, abs=0.02)
    assert stats["dropped_balance"] == n_code + n_docs - len(out) > 0
    assert stats["kept"] == len(out)
    assert min(code, len(out) - code) == min(n_code, n_docs)  # only the majority is down-sampled
    assert balance(_pairs(n_code, n_docs), share, StageStats("pairs"), seed=7) == out  # seeded
    assert balance(_pairs(n_code, n_docs), share, StageStats("pairs"), seed=8) != out  # by the seed it is given


def test_balance_leaves_a_single_kind_or_a_balanced_set_alone():
    assert balance(_pairs(10, 0), 0.5, StageStats("pairs"), seed=0) == _pairs(10, 0)
    assert balance(_pairs(5, 5), 0.5, StageStats("pairs"), seed=0) == _pairs(5, 5)


def test_balance_through_mine_pairs(fixture_pairs):
    _, _, chunks = fixture_pairs
    pairs, stats = mine(chunks, balance_code_share=0.3, balance="downsample")
    code = sum(p.kind == "code" for p in pairs)
    assert code / len(pairs) == pytest.approx(0.3, abs=0.03)
    assert stats["dropped_balance"] > 0 and stats["kind_code"] == code and stats["kept"] == len(pairs)


def test_upsample_the_default_keeps_every_pair_at_build(fixture_pairs):
    _, _, chunks = fixture_pairs
    assert PairsConfig().balance == "upsample"
    pairs, stats = mine(chunks, balance_code_share=0.3)
    assert len(pairs) == len(mine(chunks)[0]) and not stats["dropped_balance"]  # training repeats; nothing is dropped


def test_the_recipe_seed_reaches_balance(fixture_pairs, monkeypatch, fixture_repo, tiny_model, tmp_path):
    """build passes `split.seed` (the run's one seed) to the balancing draw."""
    import pipeline.mining.pairs as pairs_module
    from pipeline.build import build
    from pipeline.config import load_recipe

    seen = []
    real = pairs_module.balance
    monkeypatch.setattr(pairs_module, "balance", lambda *a, **k: seen.append(a[3] if len(a) > 3 else k["seed"]) or real(*a, **k))
    build(fixture_repo, tmp_path / "r", load_recipe("smoke", [f"train.base_model={tiny_model}", "split.seed=1234",
                                                              "pairs.balance_code_share=0.5", "pairs.balance=downsample"]))
    assert seen == [1234]


# --- query-like anchors and balance by up-sampling -------------------------------------------------------

def test_identifier_query_names_each_definition_in_words():
    chunks = literal_chunks({"pkg/store.py": (
        "class ItemStore:\n    def add_item(self, item):\n        self.items.append(item)\n        return len(self.items)\n\n"
        "def load_config_file(path):\n    with open(path) as f:\n        return f.read()\n")})
    pairs, stats = mine(chunks, types=["identifier_query"])
    anchors = {p.anchor for p in pairs}
    assert {"item store add item", "load config file"} <= anchors
    assert all(p.pair_type == "identifier_query" and p.anchor_kind == "code" for p in pairs)
    assert stats["type_identifier_query"] == len(pairs)


def test_test_behaviour_maps_a_test_name_to_the_function_it_exercises():
    chunks = literal_chunks({
        "pkg/secrets.py": "def redact_value(text, value):\n    \"\"\"Replace a value.\"\"\"\n    return text.replace(value, '<SECRET>')\n\n\n"
                          "def shout(text):\n    return text.upper()\n",
        "tests/test_secrets.py": "from pkg.secrets import redact_value, shout\n\n\n"
                                 "def test_redact_value_replaces_every_occurrence_with_a_placeholder():\n"
                                 "    assert shout(redact_value('a a', 'a')) == '<SECRET> <SECRET>'.upper()\n"})
    pairs, _ = mine(chunks, types=["test_behaviour"])
    assert [(p.anchor, p.path) for p in pairs] == [("redact value replaces every occurrence with a placeholder", "pkg/secrets.py")]
    assert pairs[0].positive.startswith("def redact_value")  # the called function sharing the test's words, not shout()


def test_upsample_order_keeps_every_pair_and_repeats_the_minority():
    from pipeline.mining.pairs import upsample_order

    kinds = ["code"] * 90 + ["docs"] * 10
    order = upsample_order(kinds, 0.75, seed=3)
    assert sorted(set(order)) == list(range(100))  # nothing thrown away
    seen = [kinds[i] for i in order]
    assert seen.count("code") == 90 and seen.count("docs") == 30  # 90 / 120 = 0.75
    assert upsample_order(kinds, 0.75, seed=3) == order and upsample_order(kinds, 0.75, seed=4) != order
    assert upsample_order(["code"] * 5, 0.5, seed=0) == list(range(5))  # one kind: nothing to balance
    assert len(upsample_order(kinds, 0.9, seed=0)) == 100  # already at the share: as mined
    assert [kinds[i] for i in upsample_order(kinds, 0.95, seed=0)].count("code") == 190  # a target both ways


def test_upsample_mode_drops_nothing_at_build(fixture_pairs):
    _, _, chunks = fixture_pairs
    pairs, stats = mine(chunks, balance_code_share=0.3, balance="upsample")
    assert "dropped_balance" not in stats and len(pairs) == len(mine(chunks)[0])


def test_generated_query_plumbing_with_a_tiny_local_seq2seq_model(tmp_path):
    """pairs.generator: a seq2seq model on disk writes questions per chunk (a random 1-layer T5 here:
    the plumbing, not the quality, which was not measured)."""
    from transformers import T5Config, T5ForConditionalGeneration

    from pipeline.models import load_tokenizer

    tokenizer = load_tokenizer("packaged:all-MiniLM-L6-v2")
    config = T5Config(vocab_size=tokenizer.vocab_size, d_model=16, d_ff=32, d_kv=8, num_layers=1, num_heads=2,
                      pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.sep_token_id,
                      decoder_start_token_id=tokenizer.pad_token_id)
    T5ForConditionalGeneration(config).save_pretrained(tmp_path / "gen")
    tokenizer.save_pretrained(tmp_path / "gen")
    chunks = literal_chunks({"pkg/a.py": "def add(a, b):\n    total = a + b\n    return total\n",
                             "docs/a.md": "# Adding\n\nCall add with two numbers to get their sum back.\n",
                             "tests/test_a.py": "def test_add():\n    assert add(1, 2) == 3\n"})
    pairs, stats = mine(chunks, types=[], generator=str(tmp_path / "gen"), generator_queries=2)
    made = [c for c in chunks if not c.path.startswith("tests/")]
    handled = stats["type_generated_query"] + sum(v for k, v in stats.items() if k.startswith("dropped_"))
    assert handled == 2 * len(made)  # two questions per non-test chunk, each kept or dropped with a reason
    assert pairs and all(p.pair_type == "generated_query" and p.anchor and p.path != "tests/test_a.py" for p in pairs)
    assert {p.positive for p in pairs} <= {c.text for c in made}
    assert mine(chunks, types=[], generator=str(tmp_path / "gen"), generator_queries=2)[0] == pairs  # seeded


@pytest.mark.parametrize("path, symbol, is_test", [
    ("server/engine_test.go", "TestServe", True), ("server/engine_test.go", "helper", True), ("lib/router.test.js", "setup", True),
    ("src/cache.spec.ts", "x", True), ("src/test/java/AccountTest.java", "Account.deposit", True), ("__tests__/a.js", "a", True),
    ("spec/greeter_spec.rb", "greet", True), ("tests/test_a.py", "f", True),
    ("server/engine.go", "Engine.ServeHTTP", False), ("lib/latest.js", "contest", False), ("src/Testimony.java", "run", False),
])
def test_test_files_of_every_language_are_recognised(path, symbol, is_test):
    from pipeline.mining.pairs import _is_test

    assert _is_test(Chunk("id", "x", path, "code", "go", 1, 1, symbol, "function")) is is_test


def test_commit_definition_pairs_a_commit_subject_with_each_definition_it_touched():
    from pipeline.mining.history import Commit
    from pipeline.mining.pairs import PairMiner

    chunks = literal_chunks({"calc.py": "def add(a, b):\n    total = a + b\n    return total\n\n\n"
                                        "def sub(a, b):\n    diff = a - b\n    return diff\n"})
    miner = PairMiner(PairsConfig(), StageStats("pairs"))
    miner.add(chunks)
    miner.add_commits([Commit("a" * 40, 1, "Keep the sum in a local before returning it", (("calc.py", "add"), ("calc.py", "gone")))])
    pairs = [p for p in miner.finish(lambda rows: {r: chunks[r].text for r in rows}, lambda: iter(chunks)) if p.pair_type == "commit_definition"]
    add = next(c for c in chunks if c.symbol == "add")
    assert [(p.anchor, p.positive_chunk_id, p.anchor_chunk_id, p.anchor_kind, p.kind) for p in pairs] == [
        ("Keep the sum in a local before returning it", add.id, "commit:" + "a" * 12, "commit", "code")]  # a definition gone from HEAD: none
    assert miner.stats["type_commit_definition"] == 1
