"""drafts: candidate questions proposed from the run's own chunks, for a person to keep or discard:
`repotune questions draft runs/NAME` -> runs/NAME/questions.drafts.jsonl.

A draft is a question-set line (docs/evaluation.md, "Question sets") plus ``"draft": true`` and its ``"source"``.
It counts for nothing until a person keeps it in the labelling view of `repotune serve` (keeping moves
it, maybe edited, into the run's question set); ``load_questions`` refuses a draft line. Drafts copy the
repository's own words, which the pair miners trained on: a draft is a prompt to write the question a
user would type, not that question.

Each source is a function (run, corpus rows) -> drafts ``{"query", "relevant"}``, named by its function
(``heading_drafts`` -> ``"heading"``); ``history_drafts`` proposes the held-out commits of the history stage.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ..common import file_of, identifier_words, squash
from ..mining.pairs import GENERIC_NAMES
from ..rundir import RunDir
from .questions import QuestionError, QuestionFile, entry_for, heldout_questions, rows_by_file

DRAFTS_FILE = "questions.drafts.jsonl"
MIN_WORDS, MAX_WORDS = 2, 30  # a draft's query, in words: one word is a keyword, not a question; past 30, a paragraph
MAX_NAMES = 3  # code names in one sentence: past this it is a list of names (columns, keys), not a question
_MARKUP = re.compile(r"[`*]|\[([^\]]*)\]\([^)]*\)")  # backticks, emphasis, [text](link) -> text
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z`])")
_NUMBERED = re.compile(r"^\d+(?:\.\d+)*[.)]?\s+")  # "8. The governance gate": a notebook's step number
# a heading that is a question: asked with "?", or begun as one ("How to ...", "Why ...", "What is ..."); a bare heading
# ("Quick start", "What this changes", "Installing with pip") names a topic, and a question set holds questions
_QUESTION = re.compile(r"(?i)^(?:.*\?$|how\b|why\b|when (?:should|do|does|can|is|are)\b|where (?:do|does|is|are|can)\b|"
                       r"what (?:is|are|does|do|happens|if)\b|which\b|can (?:i|you|we)\b|should (?:i|you|we)\b|"
                       r"do (?:i|you|we)\b|does\b|is (?:it|there)\b)")
# a code name in prose: `name()`, `mod.name`, `name` in backticks, or name() bare (the pair miner's mentions, plus a
# bare name in backticks, which READMEs use most; that one only when it has two words, `load_cache`, `CacheManager`:
# `pairs` or `balance` is as often a word, a key or a marker as a definition)
_NAME = re.compile(r"`([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(?:\(\))?`|\b([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\(\)")


def drafts_path(run: RunDir) -> Path:
    return run.root / DRAFTS_FILE


def _plain(text: str) -> str:
    return " ".join(_MARKUP.sub(lambda m: m.group(1) or "", text).split()).rstrip(":")


def heading_drafts(run: RunDir, rows: list[dict]) -> Iterator[dict]:
    """A documentation heading that is a question ("How do I install with pip?", "Why is my key redacted") -> its
    section. A bare heading ("Quick start") names a topic, not a question, and is left out, as are a page's title (a
    first-level heading over deeper ones) and a template's headings."""
    for file_rows in rows_by_file(r for r in rows if r["kind"] == "docs").values():
        headings = [r for r in file_rows if r.get("symbol")]
        deeper = any(" > " in r["symbol"] for r in headings)
        seen = set()
        for row in headings:
            if row["symbol"] in seen or (deeper and " > " not in row["symbol"]) or "{{" in row["symbol"]:
                continue  # a later piece of a long section, a page's title, a template's heading
            seen.add(row["symbol"])
            query = _NUMBERED.sub("", _plain(row["symbol"].rsplit(" > ", 1)[-1]))
            if MIN_WORDS <= len(query.split()) <= MAX_WORDS and _QUESTION.match(query):
                yield {"query": query, "relevant": [entry_for(row, file_rows)]}


def mention_drafts(run: RunDir, rows: list[dict]) -> Iterator[dict]:
    """A documentation sentence that names a symbol defined in code once ("Call `load_cache()` with a
    path ...") -> that definition; the name in the query is spelled in words ("load cache"), so the
    draft is not an exact-identifier lookup. The pair miner's rules for a name: one definition, 4+
    characters, not a generic name (``load``, ``run``)."""
    by_file = rows_by_file(rows)
    definitions: dict[str, dict[tuple[str, str], dict]] = defaultdict(dict)  # last name part -> (file, symbol) -> first piece
    for r in rows:
        if r["kind"] == "code" and r.get("chunk_type") in ("function", "class") and r.get("symbol"):
            definitions[r["symbol"].rsplit(".", 1)[-1]].setdefault((file_of(r["path"]), r["symbol"]), r)
    for r in rows:
        if r["kind"] != "docs":
            continue
        for paragraph in r["text"].split("\n\n"):
            if paragraph.lstrip().startswith(("#", "```", "~~~", "|", "    ")):
                continue  # headings, code, tables
            for sentence in _SENTENCE.split(" ".join(paragraph.split())):
                relevant, query = [], sentence
                found = list(_NAME.finditer(sentence))
                if len(found) > MAX_NAMES or sentence.count("`") > 2 * MAX_NAMES:
                    continue
                for match in found:
                    named = match.group(1) or match.group(2)
                    name = named.rsplit(".", 1)[-1]
                    bare = match.group(1) and named == name and not match.group(0).endswith("()`")
                    targets = list(definitions.get(name, {}).values())
                    if bare and len(identifier_words(name)) < 2:
                        continue
                    if len(targets) == 1 and len(name) >= 4 and name.lower() not in GENERIC_NAMES:
                        target = targets[0]
                        relevant.append(entry_for(target, by_file[file_of(target["path"])]))
                        query = query.replace(match.group(0), " ".join(identifier_words(name)), 1)
                query = _plain(query.lstrip("-*+> ").strip())
                if relevant and MIN_WORDS <= len(query.split()) <= MAX_WORDS:
                    yield {"query": query, "relevant": relevant}


def history_drafts(run: RunDir, rows: list[dict]) -> Iterator[dict]:
    """A held-out commit's cleaned subject (RUN/history/heldout.jsonl, written by the build) -> the definitions
    at HEAD it touched: a developer's words about a change, to rewrite as the question a user would ask."""

    for question in heldout_questions(run.root, rows)[0]:
        if MIN_WORDS <= len(question.query.split()) <= MAX_WORDS:
            yield {"query": question.query, "relevant": list(question.relevant)}


DraftSource = Callable[[RunDir, list[dict]], Iterable[dict]]
DRAFT_SOURCES: list[DraftSource] = [heading_drafts, mention_drafts, history_drafts]


def source_name(source: DraftSource) -> str:
    return source.__name__.removesuffix("_drafts")


def _key(query: str) -> str:
    return squash(query)


def draft_questions(run_dir: str | Path, sources: list[DraftSource] | None = None) -> dict:
    """Draft candidate questions from the run's chunk corpus into RUN/questions.drafts.jsonl (replacing
    earlier drafts). A query already in the question set, or drafted by an earlier source, is skipped;
    a draft's entries for the same query are merged. Returns {"n", "path", "by_source", "skipped_known"}."""
    from ..dataset import load_corpus

    run = RunDir(run_dir)
    rows = list(load_corpus(run))
    try:
        known = {_key(line.item["query"]) for line in QuestionFile(run.questions).lines()}
    except QuestionError as err:
        raise QuestionError(f"{err}: fix the question set first, so drafts do not repeat its questions") from err
    drafts: dict[str, dict] = {}
    by_source = {source_name(s): 0 for s in sources or DRAFT_SOURCES}
    skipped = 0
    for source in sources or DRAFT_SOURCES:
        for draft in source(run, rows):
            key = _key(draft["query"])
            if key in known:
                skipped += 1
            elif key in drafts:
                if drafts[key]["source"] == source_name(source):
                    drafts[key]["relevant"] += [e for e in draft["relevant"] if e not in drafts[key]["relevant"]]
            else:
                drafts[key] = {"query": draft["query"], "relevant": list(draft["relevant"]), "draft": True, "source": source_name(source)}
                by_source[source_name(source)] += 1
    path = drafts_path(run)
    QuestionFile(path).rewrite(list(drafts.values()))
    return {"n": len(drafts), "path": str(path), "by_source": by_source, "skipped_known": skipped}
