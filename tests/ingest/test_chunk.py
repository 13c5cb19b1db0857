"""chunk: structure-aware, token-bounded, deterministic chunks; Hypothesis checks the invariants."""

from __future__ import annotations

import dataclasses
from functools import lru_cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.ingest.chunk import Chunker, TokenCounter, chunk_files
from pipeline.ingest.clean import normalise
from pipeline.ingest.invariants import check_chunks
from pipeline.models import load_tokenizer
from pipeline.records import Chunk, SourceFile, chunk_id
from pipeline.stage import StageStats


@lru_cache(maxsize=1)
def counter() -> TokenCounter:
    """One tokenizer per session (module-level, so Hypothesis can reuse it across examples)."""
    return TokenCounter(load_tokenizer("packaged:all-MiniLM-L6-v2"))


def chunk(text: str, path: str = "pkg/mod.py", kind: str = "code", language: str = "python", max_tokens: int = 128, stats=None) -> list[Chunk]:
    return Chunker(counter(), max_tokens, stats).chunk_file(SourceFile(path, kind, language, text=text))


def assert_invariants(chunks: list[Chunk], text: str, max_tokens: int) -> None:
    problems = check_chunks(chunks, text, max_tokens, counter())
    assert problems == []


SHAPES = '''"""Shapes: tools for circles and squares."""

import math

# the radius every new circle starts with
RADIUS = 1.0


@dataclass
class Circle:
    """A circle with a radius, in metres."""

    radius: float = RADIUS

    def area(self):
        """Return the area of the circle in square metres."""
        return math.pi * self.radius ** 2

    async def grow(self, factor):
        self.radius *= factor


def _private(x):
    return x + 1
'''


# --- Python by ast -----------------------------------------------------------------------------------

def test_python_units_and_symbols():
    chunks = chunk(SHAPES, max_tokens=256)
    assert [(c.chunk_type, c.symbol, c.start_line, c.end_line) for c in chunks] == [
        ("module", "", 1, 6),
        ("class", "Circle", 9, 13),  # the decorator belongs to its class
        ("function", "Circle.area", 15, 17),
        ("function", "Circle.grow", 19, 20),
        ("function", "_private", 23, 24),
    ]
    assert all(c.kind == "code" and c.language == "python" and c.path == "pkg/mod.py" for c in chunks)
    assert_invariants(chunks, SHAPES, 256)


def test_python_docstring_meta():
    chunks = {c.symbol: c for c in chunk(SHAPES, max_tokens=256)}
    area = chunks["Circle.area"]
    assert area.meta["docstring"] == "Return the area of the circle in square metres."
    assert area.meta["code_without_docstring"] == "    def area(self):\n        return math.pi * self.radius ** 2"
    assert area.meta["signature"] == "def area(self)"
    assert "docstring" not in chunks["Circle.grow"].meta and chunks["Circle.grow"].meta["signature"] == "async def grow(self, factor)"
    module = chunks[""]
    assert module.meta["module_docstring"] == "Shapes: tools for circles and squares."
    assert module.meta["public_names"] == ["class Circle"]  # _private is not public
    assert "docstring" not in module.to_row() and "meta" not in module.to_row()


def test_leading_comment_joins_its_function():
    text = "x = 1\n\n\n# Add one to a number,\n# carefully.\ndef add_one(n):\n    return n + 1\n"
    chunks = chunk(text)
    assert [(c.symbol, c.start_line) for c in chunks] == [("", 1), ("add_one", 4)]
    assert chunks[1].text.startswith("# Add one")


def test_python_syntax_error_falls_back_to_blocks():
    stats = StageStats("chunk")
    text = "def broken(:\n    return 1\n\nprint('still here')\n"
    chunks = chunk(text, stats=stats)
    assert stats["python_syntax_fallback"] == 1
    assert [c.chunk_type for c in chunks] == ["block"]
    assert chunks[0].text == text.rstrip("\n")
    assert_invariants(chunks, text, 128)


def test_too_long_function_splits_on_statement_boundaries():
    # thirty statements of four lines each: a cut may fall between statements, never inside one
    body = "\n".join(f"    total += compute_weight(\n        value_{i},\n        factor={i},\n    )" for i in range(30))
    text = f"def accumulate(threshold):\n    total = 0\n{body}\n    return total\n"
    max_tokens = 64
    chunks = chunk(text, max_tokens=max_tokens)
    assert len(chunks) > 3
    assert {c.symbol for c in chunks} == {"accumulate"}
    statement_starts = {1, 2} | {3 + 4 * i for i in range(30)} | {3 + 4 * 30}
    assert {c.start_line for c in chunks} <= statement_starts
    assert all(c.text.rstrip().endswith(")") or c.end_line == c.start_line or "return" in c.text for c in chunks)
    assert_invariants(chunks, text, max_tokens)


def test_with_context_each_chunk_leaves_room_for_its_header():
    """chunk.context embeds "path symbol" above the text: the chunker fills the window less the header's
    tokens, so the model never cuts a full chunk's last lines to make room for it."""
    from pipeline.common import embed_text
    from pipeline.ingest.chunk import header_reserve

    body = "\n".join(f"    total += compute_weight(value_{i}, factor={i})" for i in range(80))
    text = f"def accumulate_the_weighted_totals(threshold):\n    total = 0\n{body}\n    return total\n"
    path, limit, c = "src/weights/accumulation_helpers.py", 128, counter()
    plain = Chunker(c, limit).chunk_file(SourceFile(path, "code", "python", text=text))
    headed = Chunker(c, limit, context=True).chunk_file(SourceFile(path, "code", "python", text=text))
    reserve = header_reserve(c, path, "accumulate_the_weighted_totals", limit)
    assert reserve >= 10
    embedded = [c.total(embed_text(ch.text, ch.path, ch.symbol)) for ch in headed]
    assert max(embedded) <= limit  # header and text fit the window together
    assert max(c.total(embed_text(ch.text, ch.path, ch.symbol)) for ch in plain) > limit  # as they did not before
    assert len(headed) > len(plain)
    assert check_chunks(headed, text, limit, c, context=True) == []
    assert any("for its header" in p for p in check_chunks(plain, text, limit, c, context=True))


def test_over_long_single_line_is_cut_inside_the_line():
    stats = StageStats("chunk")
    line = "WORDS = [" + ", ".join(f"'word{i}'" for i in range(300)) + "]"
    chunks = chunk(line, max_tokens=32, stats=stats)
    assert len(chunks) > 10 and stats["split_long_line"] == 1
    assert all((c.start_line, c.end_line) == (1, 1) for c in chunks)
    assert "".join(c.text for c in chunks) == line  # the pieces are the line, in order
    assert len({c.id for c in chunks}) == len(chunks)
    assert_invariants(chunks, line, 32)


def test_cut_inside_a_word_is_recounted():
    # a cut inside a long word makes its tail a new word, which WordPiece may split into more tokens
    text = '    def m0(self):\n        """qwertzuiopasdfghjklqwertzuiopasdfghjklqwertzuiopasdfghjkl"""'
    chunks = chunk(text, max_tokens=12)
    assert_invariants(chunks, text, 12)


# --- Markdown and rST by heading ------------------------------------------------------------------

MARKDOWN = """Intro text before any heading.

# Install

Install the package with pip.

## From source

Clone the repository and build it.

```bash
# not a heading: inside a fence
make install
```

## Extras

Optional extras for GPUs.

# Usage

Call the tool on a folder.
"""


def test_markdown_by_heading_with_heading_path():
    chunks = chunk(MARKDOWN, "docs/guide.md", "docs", "markdown")
    assert [(c.symbol, c.start_line, c.end_line) for c in chunks] == [
        ("", 1, 1), ("Install", 3, 5), ("Install > From source", 7, 14), ("Install > Extras", 16, 18), ("Usage", 20, 22),
    ]
    assert all(c.chunk_type == "section" for c in chunks)
    source = {c.symbol: c for c in chunks}["Install > From source"]
    assert source.meta["heading_path"] == "Install > From source"
    assert source.meta["section_body"].startswith("Clone the repository") and "# not a heading" in source.meta["section_body"]
    assert_invariants(chunks, MARKDOWN, 128)


RST = """=========
The Guide
=========

Welcome to the guide.

Installing
----------

Run pip.

From a wheel
~~~~~~~~~~~~

Download the wheel first.

Using
-----

Call it.
"""


def test_rst_headings():
    chunks = chunk(RST, "docs/guide.rst", "docs", "rst")
    assert [(c.symbol, c.start_line) for c in chunks] == [
        ("The Guide", 1), ("The Guide > Installing", 7), ("The Guide > Installing > From a wheel", 12), ("The Guide > Using", 17),
    ]
    by_symbol = {c.symbol: c for c in chunks}
    assert by_symbol["The Guide"].meta["section_body"] == "Welcome to the guide."  # over- and underline skipped
    assert by_symbol["The Guide > Using"].meta["section_body"] == "Call it."
    assert_invariants(chunks, RST, 128)


def test_code_without_a_grammar_by_blank_line_blocks():
    # JavaScript has a grammar now (tests/ingest/test_syntax.py); a language without one keeps blank-line blocks
    blocks = [
        "function add(a, b) {\n  const sum = a + b;\n  return sum;\n}",
        "function scale(values, factor) {\n  return values.map((v) => v * factor);\n}",
        "module.exports = { add, scale, version: '1.2.3', name: 'arith' };",
    ]
    text = "\n\n".join(blocks) + "\n"
    whole = chunk(text, "web/arith.kts", "code", "kotlin", max_tokens=256)
    assert len(whole) == 1 and whole[0].chunk_type == "block"  # fits: one chunk
    limit = max(counter().total(b) for b in blocks) + 2  # each block fits, no two do
    pieces = chunk(text, "web/arith.kts", "code", "kotlin", max_tokens=limit)
    assert [c.text for c in pieces] == blocks
    assert_invariants(pieces, text, limit)


# --- stable ids, determinism ------------------------------------------------------------------------

def test_ids_are_stable_and_content_addressed():
    first, second = chunk(SHAPES), chunk(SHAPES)
    assert [dataclasses.astuple(c) for c in first] == [dataclasses.astuple(c) for c in second]
    assert [c.meta for c in first] == [c.meta for c in second]
    c = first[1]
    assert c.id == chunk_id("pkg/mod.py", c.start_line, c.end_line, c.text)
    assert c.id.startswith("pkg/mod.py:9-13:")
    # an edit to one function changes that chunk's id and leaves the others alone
    edited = chunk(SHAPES.replace("return x + 1", "return x + 2"))
    assert [a.id == b.id for a, b in zip(first, edited)] == [True, True, True, True, False]


def test_chunk_files_drops_short_pieces_and_counts_kinds():
    stats = StageStats("chunk")
    files = [SourceFile("a.py", "code", "python", text="x = 1\n\n\ndef f():\n    return 'a longer body here'"),
             SourceFile("b.md", "docs", "markdown", text="# Title\n\nSome text that is long enough.")]
    out = list(chunk_files(files, Chunker(counter(), 128, stats), min_chars=20))
    assert [c.path for c in out] == ["a.py", "b.md"]
    assert stats["files"] == 2 and stats["kept"] == 2 and stats["dropped_too_short"] == 1
    assert stats["kind_code"] == 1 and stats["kind_docs"] == 1


def test_limit_too_small_is_refused():
    with pytest.raises(ValueError, match="too small"):
        Chunker(counter(), 5)


# --- the invariant checker --------------------------------------------------------------------------

def _row(text, start, end, n_tokens=None, cid=None):
    return {"id": cid or f"f:{start}-{end}:{text}", "text": text, "path": "f", "start_line": start, "end_line": end,
            "n_tokens": counter().total(text) if n_tokens is None else n_tokens}


def test_check_chunks_accepts_good_chunks_and_rows():
    text = "alpha beta\n\ngamma delta"
    assert check_chunks([_row("alpha beta", 1, 1), _row("gamma delta", 3, 3)], text, 16, counter()) == []
    assert check_chunks(chunk(SHAPES), SHAPES, 128, counter()) == []


@pytest.mark.parametrize(
    "rows, expected",
    [
        ([_row("alpha beta", 1, 1), _row("   ", 3, 3), _row("gamma delta", 3, 3)], "empty text"),
        ([_row("alpha beta\n\ngamma delta " * 3, 1, 3)], "over the limit"),
        ([_row("gamma delta", 3, 3), _row("alpha beta", 1, 1)], "before the previous chunk"),
        ([_row("alpha beta", 1, 1)], "non-blank line(s) in no chunk, first: line 3"),
        ([_row("alpha beta", 1, 1), _row("omega", 3, 3)], "not taken from lines 3-3"),
        ([_row("alpha beta", 1, 1, cid="x"), _row("gamma delta", 3, 3, cid="x")], "duplicate id"),
        ([_row("alpha beta", 1, 1, n_tokens=3), _row("gamma delta", 3, 3)], "records n_tokens=3"),
        ([_row("alpha beta", 2, 1), _row("gamma delta", 3, 3)], "invalid span"),
        ([_row("alpha beta", 1, 1), _row("gamma delta", 3, 4)], "runs past the file's 3 lines"),
    ],
)
def test_check_chunks_reports_each_violation(rows, expected):
    problems = check_chunks(rows, "alpha beta\n\ngamma delta", 8, counter())
    assert any(expected in p for p in problems), problems


def test_check_chunks_without_text_skips_coverage():
    assert check_chunks([_row("alpha beta", 1, 1)], None, 16, counter()) == []


# --- Hypothesis: the invariants on arbitrary text ----------------------------------------------------

_WORDS = st.sampled_from([
    "load", "parser", "x", "self.items", "tokenization", "unbelievably", "naïve", "émigré", "日本語", "λ", "İstanbul",
    "==", "(", ")", ":", "'''", '"""', "#", "qwertzuiopasdfghjkl" * 3, "é" * 40, "z" * 120, "💥", "\t", "return",
])
_LINE = st.lists(_WORDS, max_size=30).map(" ".join)
_PYTHON_LINE = st.one_of(
    st.builds("def f{}(x, y=1):".format, st.integers(0, 4)),
    st.builds("class C{}:".format, st.integers(0, 4)),
    st.builds("    def m{}(self):".format, st.integers(0, 4)),
    st.builds('    """{}"""'.format, _LINE),
    st.builds('        """{}"""'.format, _LINE),
    st.builds("    return {!r}".format, _LINE),
    st.builds("        x = {!r}".format, _LINE),
    st.builds("# {}".format, _LINE),
    st.builds("    # {}".format, _LINE),
    st.sampled_from(["", "", "    pass", "        pass", "@decorator", '"""Module docstring."""', "import os", "if x:"]),
    _LINE,
)
_MARKDOWN_LINE = st.one_of(
    st.builds(lambda level, title: "#" * level + " " + title, st.integers(1, 7), _LINE),
    st.sampled_from(["", "", "```", "~~~", "    indented code"]),
    st.builds(lambda ch, n: ch * n, st.sampled_from("=-~^*#"), st.integers(1, 30)),
    _LINE,
)
_ANY_LINE = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)

# The chunker's input has been through clean: LF line endings, no trailing whitespace.
TEXTS = st.one_of(
    st.lists(_PYTHON_LINE, max_size=60),
    st.lists(_MARKDOWN_LINE, max_size=60),
    st.lists(_ANY_LINE, max_size=25),
).map("\n".join).map(normalise)
KINDS = st.sampled_from([("code", "python"), ("docs", "markdown"), ("docs", "rst"), ("code", "javascript"), ("code", "kotlin"), ("docs", "text")])
LIMITS = st.integers(min_value=11, max_value=96)  # 11: the smallest limit Chunker accepts for a BERT tokenizer

# no per-test max_examples: the profile (HYPOTHESIS_PROFILE=dev|ci|fuzz, tests/conftest.py) decides
_PROPERTY = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@_PROPERTY
@given(text=TEXTS, kind=KINDS, max_tokens=LIMITS)
def test_property_chunks_obey_the_invariants(text, kind, max_tokens):
    chunks = chunk(text, f"any/file.{kind[1]}", kind[0], kind[1], max_tokens=max_tokens)
    # within the limit (recounted), non-empty, in source order, covering every non-blank line
    assert check_chunks(chunks, text, max_tokens, counter()) == []
    assert all(c.n_tokens <= max_tokens and c.text.strip() for c in chunks)
    assert [c.start_line for c in chunks] == sorted(c.start_line for c in chunks)


@_PROPERTY
@given(text=TEXTS, kind=KINDS, max_tokens=LIMITS)
def test_property_chunking_is_deterministic_with_stable_ids(text, kind, max_tokens):
    path = f"any/file.{kind[1]}"
    first = chunk(text, path, kind[0], kind[1], max_tokens=max_tokens)
    second = Chunker(counter(), max_tokens).chunk_file(SourceFile(path, kind[0], kind[1], text=text, commit="abc"))
    assert [(c.id, c.text, c.start_line, c.end_line, c.symbol, c.chunk_type, c.n_tokens) for c in first] == \
           [(c.id, c.text, c.start_line, c.end_line, c.symbol, c.chunk_type, c.n_tokens) for c in second]
    assert len({c.id for c in first}) == len(first)
    for c in first:
        assert c.id.startswith(chunk_id(path, c.start_line, c.end_line, c.text))  # "+" marks a repeated piece


def test_hypothesis_profile_comes_from_the_environment():
    import os

    expected = {"dev": (30, False), "ci": (50, True), "fuzz": (2000, False)}[os.environ.get("HYPOTHESIS_PROFILE", "dev")]
    assert (settings().max_examples, settings().derandomize) == expected
    assert settings().deadline is None


# --- token counts: per distinct word, exactly what the tokenizer counts per line -------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["def f(x):", "  return x", "\u00e9t\u00e9", "\u4e2d\u6587", "a\x0bb", "a\x1cb", "a\x85b", "a\u00a0b", "a\u2028b", "a\u200bb",
     "x" * 120, "snake_case_name", "CamelCase", "  \t  "]), max_size=12))
def test_counts_by_word_equal_the_tokenizers_counts_per_line(lines):
    counter_ = counter()
    assert counter_.by_word  # MiniLM: a BERT pre-tokenizer and normaliser, WordPiece
    exact = [len(enc) for enc in counter_.backend.encode_batch_fast(lines, add_special_tokens=False)]
    assert counter_.per_line(lines) == exact


def test_a_transformers_tokenizer_and_its_tokenizer_json_count_alike():
    from pipeline.models import load_counting_tokenizer

    text = "def add(a, b):\n    \"\"\"Add two numbers.\"\"\"\n    return a + b  # caf\u00e9 \u4e2d\u6587\n" * 30
    lines = text.split("\n")
    hf, raw = TokenCounter(load_tokenizer("packaged:all-MiniLM-L6-v2")), TokenCounter(load_counting_tokenizer("packaged:all-MiniLM-L6-v2"))
    assert hf.special == raw.special == 2
    assert hf.per_line(lines) == raw.per_line(lines)
    assert hf.total(text) == raw.total(text) == len(load_tokenizer("packaged:all-MiniLM-L6-v2")(text)["input_ids"])  # no truncation
    assert hf.split_line(lines[1] * 40, 50) == raw.split_line(lines[1] * 40, 50)


def test_a_unit_of_many_thousand_lines_is_chunked_without_deep_recursion():
    """A 30,000-line data module (one statement, no split point inside) gives 1,000s of pieces: the
    chunker loops over them instead of recursing once per piece (a RecursionError before)."""
    text = "TABLE = [\n" + "".join(f"    ({i}, 'entry number {i}'),\n" for i in range(30_000)) + "]\n"
    chunks = chunk(text, max_tokens=64)
    assert len(chunks) > 1000
    assert_invariants(chunks, text, 64)
