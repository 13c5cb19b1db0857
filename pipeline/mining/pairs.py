"""pairs: mine (anchor, positive) training pairs from the repository's structure; no LLM needed.

Pair types (each counted in ``stats/pairs.json``):
- ``docstring_code``: a docstring's first paragraph -> the function or class with the docstring
  removed (CodeSearchNet rules: body of 3+ lines, docstring of 3+ words, no test functions);
- ``heading_section``: a Markdown/rST heading path -> the section's text;
- ``mention_definition``: a documentation paragraph that mentions a code symbol (``name()``,
  ``module.name``) -> that symbol's definition;
- ``comment_block``: a comment -> the block of code it introduces;
- ``module_summary``: a module docstring -> a summary of the module's public names;
- ``identifier_query``: a definition's name in words -> the definition (keyword-like queries);
- ``test_behaviour``: a test's name in words -> the definition the test exercises;
- ``commit_definition``: a commit's cleaned subject -> each definition at HEAD it touched (``history.py``;
  ``history.pairs``, on by default; the newest commits are held out of it as the history yardstick);
- ``generated_query``: questions a seq2seq model writes for a chunk -> the chunk (``pairs.generator``, off by default).

An anchor never contains its positive verbatim, nor the reverse (else the model learns string
matching), and pairs are deduplicated; both rules count what they drop.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from pathlib import PurePosixPath
from typing import NamedTuple

from ..common import hub_offline, identifier_words, squash
from ..config import PairsConfig
from ..records import Chunk, Pair
from ..stage import StageStats

_COMMENT = re.compile(r"^\s*(#|//[/!]?)\s?(.*)$")
_SLASH_COMMENT = re.compile(r"^\s*(//[/!]?)\s?(.*)$")
# languages where `#` starts a comment; elsewhere it is a preprocessor line or an attribute (`#include`, `#[derive]`)
_HASH_COMMENTS = {"python", "ruby", "shell", "yaml", "toml", "perl", "r", "make", "dockerfile", "ini", "php", "julia", "text"}
# test files beyond Python's test_*.py: foo_test.go, foo.test.js, foo.spec.ts, FooTest.java, foo_spec.rb
_TEST_FILE = re.compile(r"(_test|_spec|\.test|\.spec|Tests?)\.\w+$")
_TEST_DIRS = {"tests", "test", "__tests__", "spec", "specs"}
_MENTION = re.compile(r"`?\b([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\(\)`?|`([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+)`")
# comment lines that describe tooling, not the code after them
_NOT_PROSE = re.compile(r"^(!|noqa|type:|pragma|pylint|fmt:|isort|-\*-|copyright|license|spdx)", re.I)
# names too generic to point at one definition
GENERIC_NAMES = {"main", "run", "init", "get", "set", "test", "setup", "update", "load", "save", "call", "print", "len", "str", "list", "dict"}


def first_paragraph(text: str) -> str:
    return text.strip().split("\n\n", 1)[0].strip()


def _is_test(chunk: Chunk) -> bool:
    # any part of the qualified name: a test class's helpers and setUp are test code too
    names = chunk.symbol.split(".")
    parts = PurePosixPath(chunk.path).parts
    name = PurePosixPath(chunk.path).name
    return (any(n.startswith(("test", "Test")) for n in names) or bool(_TEST_DIRS.intersection(parts[:-1]))
            or name.startswith("test_") or bool(_TEST_FILE.search(name)))


class ChunkRef(NamedTuple):
    """What the cross-file miners keep of a chunk until the end of the build: its row in the corpus
    (where its text is read back), never the text itself."""

    row: int
    id: str
    path: str
    kind: str
    symbol: str


Candidate = tuple[ChunkRef, str, ChunkRef, str]  # (anchor's chunk, anchor, positive's chunk, positive)
Reference = tuple[ChunkRef, str, ChunkRef]  # a cross-file miner's: the positive is the third chunk's text


# --- per-chunk miners: (anchor, positive) pairs from one chunk's own text and structure ------------

def docstring_code(c: Chunk, config: PairsConfig) -> Iterator[tuple[str, str]]:
    if c.chunk_type in ("function", "class") and "docstring" in c.meta and not _is_test(c):
        anchor = first_paragraph(c.meta["docstring"])
        body = c.meta["code_without_docstring"]
        if len(anchor.split()) >= config.min_docstring_tokens and sum(1 for line in body.split("\n") if line.strip()) >= config.min_body_lines:
            yield anchor, body


def heading_section(c: Chunk, config: PairsConfig) -> Iterator[tuple[str, str]]:
    body = c.meta.get("section_body", "")
    if c.kind == "docs" and c.meta.get("heading_path") and len(body.strip()) >= 20:
        yield c.meta["heading_path"], body


def comment_block(c: Chunk, config: PairsConfig) -> Iterator[tuple[str, str]]:
    if c.kind != "code":
        return
    lines = c.text.split("\n")
    pattern = _COMMENT if c.language in _HASH_COMMENTS else _SLASH_COMMENT
    i = 0
    while i < len(lines):
        # a definition's doc comment (at the chunk's top, outside Python) is docstring_code's anchor already
        at_doc = i == 0 and c.language != "python" and "docstring" in c.meta
        comment = []
        while i < len(lines) and (m := pattern.match(lines[i])) and not lines[i].lstrip().startswith("#!"):
            if not _NOT_PROSE.match(m.group(2).strip()):
                comment.append(m.group(2).strip())
            i += 1
        block = []
        while i < len(lines) and lines[i].strip() and not pattern.match(lines[i]):
            block.append(lines[i])
            i += 1
        text = " ".join(comment).strip()
        if len(text.split()) >= config.min_docstring_tokens and len(block) >= 2 and not at_doc:
            yield text, "\n".join(block)
        if not comment and not block:
            i += 1


def module_summary(c: Chunk, config: PairsConfig) -> Iterator[tuple[str, str]]:
    doc = c.meta.get("module_docstring", "")
    names = c.meta.get("public_names", [])
    if doc and names:
        module = PurePosixPath(c.path).with_suffix("").as_posix().replace("/", ".")
        yield first_paragraph(doc), f"module {module}: " + "; ".join(names)


# --- cross-file miners: from the index the miner keeps (definitions by name, mentions, test calls) ---

def _definitions_by_name(definitions: dict[tuple[str, str], ChunkRef]) -> dict[str, list[ChunkRef]]:
    """Last name part -> the definitions of that name (one per (path, symbol): its first piece, the one
    with the signature, stands for a definition that spans several chunks)."""
    by_name: dict[str, list[ChunkRef]] = defaultdict(list)
    for ref in definitions.values():
        by_name[ref.symbol.rsplit(".", 1)[-1]].append(ref)
    return by_name


def mention_definition(miner: PairMiner) -> Iterator[Reference]:
    for ref, paragraph, name in miner.mentions:
        targets = miner.by_name.get(name, [])
        # only a name that points at exactly one definition; generic names are ambiguous
        if len(targets) == 1 and len(name) >= 4 and name.lower() not in GENERIC_NAMES:
            yield ref, paragraph, targets[0]


def identifier_query(miner: PairMiner) -> Iterator[Reference]:
    """A definition's qualified name in words ("SecretScanner.redact" -> "secret scanner redact") -> the
    definition: the short keyword queries people type into a search box."""
    for targets in miner.by_name.values():
        for ref in targets:
            words = identifier_words(ref.symbol)
            if len(words) >= 2 and not _is_test(ref):
                yield ref, " ".join(words), ref


_CALL = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def test_behaviour(miner: PairMiner) -> Iterator[Reference]:
    """A test's name in words ("test_redact_replaces_each_kind" -> "redact replaces each kind") -> the
    definition it exercises: of the repository's functions it calls, the one whose name shares most
    words with the test's name. Test names are sentences about behaviour, in the words people use."""
    for ref, words, called_names in miner.tests:
        best, shared = None, 0
        for called in called_names:
            targets = [t for t in miner.by_name.get(called, []) if not _is_test(t)]
            overlap = len(set(identifier_words(called)) & set(words))
            if len(targets) == 1 and len(called) >= 4 and called.lower() not in GENERIC_NAMES and overlap > shared:
                best, shared = targets[0], overlap
        if best is not None:
            yield ref, " ".join(words), best


def commit_definition(miner: PairMiner) -> Iterator[Reference]:
    """A commit's cleaned subject (``history.py``) -> each definition at HEAD it touched: a developer's own
    words about that code. The anchor is no chunk (its id names the commit), so the pair goes with its
    positive's file in the split."""
    for commit in miner.commits:
        anchor = ChunkRef(-1, f"commit:{commit.sha[:12]}", "", "commit", "")
        for key in commit.definitions:
            if (target := miner.definitions.get(key)) is not None:
                yield anchor, commit.message, target


def generated_query(chunks: Iterable[Chunk], config: PairsConfig) -> Iterator[tuple[Chunk, str, Chunk, str]]:
    """``pairs.generator`` (a seq2seq model, doc2query / InPars style) writes questions for each chunk of
    code and docs (tests left out) -> the chunk. Sampled with a fixed seed; batched; GPU when there is one."""
    import os

    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    offline = hub_offline() or os.path.isdir(config.generator)
    tokenizer = AutoTokenizer.from_pretrained(config.generator, local_files_only=offline)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForSeq2SeqLM.from_pretrained(config.generator, local_files_only=offline).to(device).eval()
    torch.manual_seed(0)
    todo = (c for c in chunks if c.kind in ("code", "docs") and not _is_test(c))
    n = config.generator_queries
    while batch := list(itertools.islice(todo, 16)):  # 16 chunks at a time: the corpus is streamed
        enc = tokenizer([c.text for c in batch], truncation=True, max_length=384, padding=True, return_tensors="pt",
                        return_token_type_ids=False).to(device)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=32, min_new_tokens=3, do_sample=True, top_p=0.95, num_return_sequences=n)
        texts = tokenizer.batch_decode(out, skip_special_tokens=True)
        for i, c in enumerate(batch):
            for query in texts[i * n : (i + 1) * n]:
                yield c, query, c, c.text


LOCAL_MINERS = {f.__name__: f for f in (docstring_code, heading_section, comment_block, module_summary)}
INDEX_MINERS = {f.__name__: f for f in (mention_definition, identifier_query, test_behaviour, commit_definition)}
MINERS = {**LOCAL_MINERS, **INDEX_MINERS, "generated_query": generated_query}


class PairMiner:
    """Mines pairs from the chunks of one file after another, as the build makes them.

    Per-chunk miners run as each file arrives and keep their candidate pairs; the cross-file miners
    keep an index (definitions by (path, symbol), doc mentions of names, the calls of each test: rows,
    ids and symbols, no chunk text) and read the few texts they need from the corpus at the end
    (``finish``). Candidates are judged at the end, type by type in ``pairs.types`` order, exactly as
    if every chunk had been in memory at once."""

    def __init__(self, config: PairsConfig, stats: StageStats, seed: int = 0):
        self.config, self.stats, self.seed = config, stats, seed
        self.types = [*config.types, *(["generated_query"] if config.generator else [])]
        self.local: dict[str, list[Candidate]] = {t: [] for t in self.types if t in LOCAL_MINERS}
        self.definitions: dict[tuple[str, str], ChunkRef] = {}
        self.mentions: list[tuple[ChunkRef, str, str]] = []  # (doc chunk, paragraph, name mentioned)
        self.tests: list[tuple[ChunkRef, list[str], list[str]]] = []  # (test, its name in words, names it calls)
        self.commits: list = []  # history.Commit, for commit_definition (add_commits)
        self.rows = 0

    def add_commits(self, commits: list) -> None:
        """The training commits of the history stage (``history.Commit``): mined as ``commit_definition``
        pairs, judged after the recipe's types (before a generator's)."""
        self.commits = list(commits)
        if self.commits and "commit_definition" not in self.types:
            self.types.insert(len(self.config.types), "commit_definition")

    def add(self, chunks: Iterable[Chunk]) -> None:
        """The next chunks, in corpus order (their meta is read here, and need not be kept after)."""
        for c in chunks:
            ref = ChunkRef(self.rows, c.id, c.path, c.kind, c.symbol)
            self.rows += 1
            for pair_type, found in self.local.items():
                found.extend((ref, anchor, ref, positive) for anchor, positive in LOCAL_MINERS[pair_type](c, self.config))
            if c.kind == "code" and c.chunk_type in ("function", "class") and "signature" in c.meta:
                self.definitions.setdefault((c.path, c.symbol), ref)  # chunks come in source order: the first piece
            if c.kind == "docs" and "mention_definition" in self.types:
                for paragraph in c.text.split("\n\n"):
                    for match in _MENTION.finditer(paragraph):
                        self.mentions.append((ref, paragraph.strip(), (match.group(1) or match.group(2)).rsplit(".", 1)[-1]))
            name = c.symbol.rsplit(".", 1)[-1]
            if "test_behaviour" in self.types and c.kind == "code" and c.chunk_type == "function" and name.startswith("test_"):
                words = identifier_words(name)[1:]  # without "test"
                if len(words) >= self.config.min_docstring_tokens:
                    self.tests.append((ref, words, sorted(set(_CALL.findall(c.text)))))

    def finish(self, texts: Callable[[set[int]], dict[int, str]], chunks: Callable[[], Iterable[Chunk]]) -> list[Pair]:
        """The pairs: ``texts(rows)`` reads those chunks' texts back (one pass over the corpus per
        cross-file miner), ``chunks()`` streams the corpus (only the question generator needs it).
        Verbatim and duplicate pairs are dropped (counted)."""
        self.by_name = _definitions_by_name(self.definitions)
        pairs: list[Pair] = []
        seen: set[bytes] = set()  # a digest per kept (anchor, positive), not the texts: memory
        stats = self.stats
        for pair_type in self.types:
            if pair_type in self.local:
                candidates: Iterable = self.local[pair_type]
            elif pair_type in INDEX_MINERS:
                found = list(INDEX_MINERS[pair_type](self))
                text = texts({target.row for _, _, target in found})
                candidates = [(ref, anchor, target, text[target.row]) for ref, anchor, target in found]
            else:
                candidates = generated_query(chunks(), self.config)
            for a_chunk, anchor, p_chunk, positive in candidates:
                anchor, positive = anchor.strip(), positive.strip()
                key = (squash(anchor), squash(positive))
                if not key[0] or not key[1]:
                    stats.drop("empty", p_chunk.id)
                elif key[0] in key[1] or key[1] in key[0]:
                    stats.drop("verbatim", p_chunk.id)
                elif (digest := hashlib.blake2b(f"{len(key[0])}:{key[0]}{key[1]}".encode(), digest_size=16).digest()) in seen:
                    stats.drop("duplicate", p_chunk.id)
                else:
                    seen.add(digest)
                    stats["kept"] += 1
                    stats[f"type_{pair_type}"] += 1
                    pairs.append(Pair(anchor, positive, pair_type, p_chunk.path, a_chunk.kind, p_chunk.kind,
                                      a_chunk.id, p_chunk.id, kind=p_chunk.kind))
        self.local.clear()
        config = self.config
        if config.balance_code_share is not None and config.balance == "downsample":
            pairs = balance(pairs, config.balance_code_share, stats, self.seed)
        for kind in ("code", "docs"):
            stats[f"kind_{kind}"] = sum(p.kind == kind for p in pairs)
        return pairs


def mine_pairs(chunks: list[Chunk], config: PairsConfig, stats: StageStats, seed: int = 0) -> list[Pair]:
    """Every enabled miner over chunks held in memory, by the ``PairMiner`` the build feeds file by file."""
    miner = PairMiner(config, stats, seed)
    miner.add(chunks)
    return miner.finish(lambda rows: {row: chunks[row].text for row in rows}, lambda: iter(chunks))


def upsample_order(kinds: list[str], code_share: float, seed: int) -> list[int]:
    """Row indices for training with every pair kept and the minority kind (code or docs) repeated,
    seeded, until code is ``code_share`` of what training sees (``pairs.balance: upsample``)."""
    code = [i for i, k in enumerate(kinds) if k == "code"]
    docs = [i for i, k in enumerate(kinds) if k != "code"]
    if not code or not docs:
        return list(range(len(kinds)))
    if len(code) / len(kinds) > code_share:
        minority, want = docs, round(len(code) * (1 - code_share) / code_share)
    else:
        minority, want = code, round(len(docs) * code_share / (1 - code_share))
    rng = random.Random(seed)
    extra = []
    while len(minority) + len(extra) < want:
        extra += rng.sample(minority, min(len(minority), want - len(minority) - len(extra)))
    return list(range(len(kinds))) + extra


def balance(pairs: list[Pair], code_share: float, stats: StageStats, seed: int) -> list[Pair]:
    """Down-sample the majority kind (code or docs) so that code is ``code_share`` of the pairs."""
    code = [i for i, p in enumerate(pairs) if p.kind == "code"]
    docs = [i for i, p in enumerate(pairs) if p.kind != "code"]
    if not code or not docs:
        return pairs  # nothing to balance against; the gate's balance check will say so
    if len(code) / len(pairs) > code_share:
        majority, keep = code, round(len(docs) * code_share / (1 - code_share))
    else:
        majority, keep = docs, round(len(code) * (1 - code_share) / code_share)
    if keep >= len(majority):
        return pairs
    drop = set(random.Random(seed).sample(majority, len(majority) - keep))
    stats["dropped_balance"] += len(drop)
    stats["kept"] -= len(drop)
    return [p for i, p in enumerate(pairs) if i not in drop]
