"""Gate: the chunker keeps its contract on arbitrary text (Hypothesis), and the run's own chunks
obey the same invariants (token limit in the model's own tokens, order, unique stable ids)."""

from collections import defaultdict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.ingest.chunk import Chunker, TokenCounter
from pipeline.ingest.invariants import check_chunks
from pipeline.ingest.workers import max_chunk_tokens
from pipeline.models import load_tokenizer
from pipeline.records import SourceFile, chunk_id
from pipeline.rundir import RunError

pytestmark = [pytest.mark.governance, pytest.mark.chunk_invariants]

_WORDS = st.sampled_from(["def", "class", "return", "x", "load_config", "# note", "import os", "Parser", "the", "value",
                          "(", ")", ":", "=", "\"\"\"doc\"\"\"", "##", "Heading", "-", "`code()`", "très", "🙂", "a" * 300])
_LINE = st.tuples(st.sampled_from(["", "    ", "        ", "# ", "## "]), st.lists(_WORDS, max_size=12)).map(lambda t: t[0] + " ".join(t[1]))
_TEXT = st.lists(_LINE, min_size=1, max_size=40).map("\n".join)
_PY = st.lists(st.sampled_from([
    'def f{}(a, b=1):\n    """Add the two numbers and return them."""\n    return a + b\n',
    "class C{}:\n    \"\"\"A class.\"\"\"\n    x = 1\n\n    def m(self):\n        return self.x\n",
    "# a comment about the next block\nvalue{} = [i for i in range(10)]\n",
    "import os{}\n", "if True:\n    y{} = 'a long string ' * 3\n", "s{} = '" + "b" * 700 + "'\n",
]), min_size=1, max_size=12).map(lambda parts: "\n".join(p.format(i) for i, p in enumerate(parts)))


@pytest.fixture(scope="module")
def run_recipe(run):
    try:
        return run.read_recipe()
    except RunError as err:
        pytest.fail(str(err), pytrace=False)


@pytest.fixture(scope="module")
def counter(run_recipe):
    return TokenCounter(load_tokenizer(run_recipe.train.base_model))


def falsified(holds) -> tuple[int, str]:
    """Run a Hypothesis property: (0, "") when it holds, else (1, the error and Hypothesis' smallest failing example).
    Hypothesis stops at the first falsified property, so the value the gate records is 0 or 1 violated property."""
    try:
        holds()
    except Exception as err:  # an AssertionError from the invariants, or the chunker crashing on the example
        notes = " ".join(getattr(err, "__notes__", []))
        return 1, f"{type(err).__name__}: {str(err)[:300]} {notes[:600]}".strip()
    return 0, ""


def test_chunker_properties_on_any_text(counter, policy, check):
    examples = []

    @given(text=_TEXT, language=st.sampled_from(["markdown", "rst", "text", "yaml"]), limit=st.sampled_from([24, 64, 128]))
    def holds(text, language, limit):
        examples.append(1)
        source = SourceFile("f.txt", "docs", language, text=text)
        chunks = Chunker(counter, limit).chunk_file(source)
        assert check_chunks(chunks, text, limit, counter) == []
        assert chunks == Chunker(counter, limit).chunk_file(source)  # deterministic, byte for byte

    violated, why = falsified(holds)
    allowed = policy["chunk_invariants"]["max_violations"]
    check(violated, f"<= {allowed}", violated <= allowed,
          f"the chunker broke its contract on generated text ({len(examples)} examples tried): {why}")


def test_chunker_properties_on_python(counter, policy, check):
    examples = []

    @given(text=_PY, limit=st.sampled_from([24, 64, 128]), context=st.booleans())
    def holds(text, limit, context):
        examples.append(1)
        source = SourceFile("src/package/module.py", "code", "python", text=text)
        chunks = Chunker(counter, limit, context=context).chunk_file(source)
        assert check_chunks(chunks, text, limit, counter, context) == []  # with context: the header fits too
        assert [c.id for c in chunks] == [c.id for c in Chunker(counter, limit, context=context).chunk_file(source)]

    violated, why = falsified(holds)
    allowed = policy["chunk_invariants"]["max_violations"]
    check(violated, f"<= {allowed}", violated <= allowed,
          f"the chunker broke its contract on generated Python ({len(examples)} examples tried): {why}")


def test_run_chunks_obey_the_invariants(corpus, run_recipe, counter, policy, check):
    limit = max_chunk_tokens(run_recipe)
    by_path = defaultdict(list)
    for row in corpus:
        by_path[row["path"]].append(row)
    problems = []
    for path, rows in by_path.items():
        problems += [f"{path}: {p}" for p in check_chunks(rows, None, limit, counter, run_recipe.chunk.context)]
        # stable ids: path + span + content hash, recomputable from the row itself
        problems += [f"{path}: id {r['id']} does not match its content" for r in rows
                     if not r["id"].startswith(chunk_id(r["path"], r["start_line"], r["end_line"], r["text"]))]
    allowed = policy["chunk_invariants"]["max_violations"]
    check(len(problems), f"<= {allowed}", len(problems) <= allowed,
          f"{len(corpus)} chunks checked: {'; '.join(problems[:10])}. The chunker broke its contract: rebuild, and report the file")
