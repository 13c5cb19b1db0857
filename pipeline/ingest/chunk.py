"""chunk: structure-aware, token-bounded chunks with stable ids.

Python splits by ``ast`` (module-level statements, classes, functions, methods); code in a language
with a tree-sitter grammar (JavaScript, TypeScript, Go, Java, Rust, Ruby, C, C++, C#, PHP) by
``pipeline.ingest.syntax`` into the same units; Markdown and rST by heading (the heading path travels with
the chunk); everything else by blank-line blocks. A piece over the token limit splits at statement
(or paragraph) boundaries, then at lines, then inside a line. Every non-blank line of a file lands in exactly one chunk, in source order, and the
same input gives the same chunks byte for byte.

Token counts use the base model's own tokenizer and include its special tokens, so no chunk is
truncated when the model embeds it.

Over 350 lines: the token counter, the chunker and its three ways to cut (Python by ``ast``, docs by
heading, other text by blocks) share the fitting rules that keep every chunk under the limit; tree-
sitter languages live in ``syntax``.
"""

from __future__ import annotations

import ast
import bisect
import itertools
import re
from collections.abc import Iterable, Iterator

from ..common import context_header
from ..records import Chunk, Segment, SourceFile, chunk_id
from ..stage import StageStats
from . import syntax

# characters Python's str.split() takes for whitespace but BERT's normaliser deletes (control characters):
# a line holding one is counted whole, as the tokenizer sees it
_NOT_BERT_SPACE = re.compile("[\x0b\x0c\x1c-\x1f\x85]")
_MAX_CACHED_WORDS = 500_000  # distinct words (~60 MB at most)


class TokenCounter:
    """Counts tokens with one tokenizer, loaded once per stage: a Rust ``tokenizers.Tokenizer`` (see
    ``models.load_counting_tokenizer``) or a transformers tokenizer, whose Rust backend is used where
    it has one."""

    def __init__(self, tokenizer):
        from tokenizers import Tokenizer

        if isinstance(tokenizer, Tokenizer):
            self.backend = tokenizer
        elif getattr(tokenizer, "backend_tokenizer", None) is not None:
            # a copy, with no truncation or padding: the transformers wrapper sets them per call
            self.backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
            self.backend.no_truncation()
            self.backend.no_padding()
        else:  # a tokenizer without a Rust backend: its own Python API, slower
            self.backend = None
        self.tokenizer = tokenizer
        self.special = self.total("")  # [CLS] + [SEP] for BERT
        # A BERT pre-tokenizer splits on whitespace before anything else, so a text's token count is
        # exactly the sum of its lines' counts: no need to re-tokenize each chunk to check it.
        self.additive = type(getattr(self.backend, "pre_tokenizer", None)).__name__ == "BertPreTokenizer"
        # The same holds word by word (whitespace-separated) when the normaliser works character by
        # character (BERT's) and WordPiece pieces each word alone: a line's count is the sum of its
        # words' counts, and each distinct word is tokenized once (code repeats its words: ~10x fewer).
        self.by_word = self.additive and type(self.backend.normalizer).__name__ in ("BertNormalizer", "NoneType") \
            and type(self.backend.model).__name__ == "WordPiece"
        self._words: dict[str, int] = {}

    def per_line(self, lines: list[str]) -> list[int]:
        if not lines:
            return []
        if self.by_word and not any(map(_NOT_BERT_SPACE.search, lines)):
            return self._per_line_by_word(lines)
        if self.backend is not None:  # one batch in Rust: no offsets, no Python-side conversion
            return [len(enc) for enc in self.backend.encode_batch_fast(lines, add_special_tokens=False)]
        return [len(ids) for ids in self.tokenizer(lines, add_special_tokens=False, verbose=False)["input_ids"]]

    def _per_line_by_word(self, lines: list[str]) -> list[int]:
        words = [line.split() for line in lines]
        cache = self._words
        if len(cache) > _MAX_CACHED_WORDS:  # a bound on memory, whatever the repository's vocabulary
            cache.clear()
        new = list(dict.fromkeys(w for line in words for w in line if w not in cache))
        if new:
            cache.update(zip(new, map(len, self.backend.encode_batch_fast(new, add_special_tokens=False))))
        count = cache.__getitem__
        return [sum(map(count, line)) for line in words]

    def total(self, text: str) -> int:
        """Tokens of ``text`` as the model sees it, special tokens included."""
        if self.backend is not None:
            return len(self.backend.encode(text).ids)
        return len(self.tokenizer(text, verbose=False)["input_ids"])

    def _offsets(self, line: str) -> list[tuple[int, int]]:
        if self.backend is not None:
            return self.backend.encode(line, add_special_tokens=False).offsets
        return self.tokenizer(line, add_special_tokens=False, return_offsets_mapping=True, verbose=False)["offset_mapping"]

    def split_line(self, line: str, budget: int) -> list[str]:
        """Cut one over-long line into pieces of at most ``budget`` tokens (no special tokens)."""
        offsets = self._offsets(line)
        cuts = [offsets[i][0] for i in range(budget, len(offsets), budget)]
        bounds = [0, *cuts, len(line)]
        pieces = []
        for a, b in zip(bounds, bounds[1:]):
            piece = line[a:b]
            if not piece.strip():
                continue
            # A cut inside a word makes the rest a new word, which WordPiece may split into more
            # tokens than it had in context: recount, and cut again where needed. A piece that starts
            # where the line starts keeps its tokens (greedy longest-match), so this terminates.
            if len(piece) < len(line) and self.total(piece) - self.special > budget:
                pieces += self.split_line(piece, budget)
            else:
                pieces.append(piece)
        return pieces


# --- structure: where units start -----------------------------------------------------------------

def _signature(node: ast.AST) -> str:
    if isinstance(node, ast.ClassDef):
        return f"class {node.name}"
    args = ast.unparse(node.args)
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    return f"{prefix} {node.name}({args})"


def _python_segments(text: str, lines: list[str]) -> tuple[list[Segment], ast.Module]:
    """Units of a Python file, and its syntax tree."""
    tree = ast.parse(text)
    units: list[Segment] = []
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)

    def first_line(node: ast.AST) -> int:
        line = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        while line > 1 and lines[line - 2].lstrip().startswith("#"):  # a comment introduces the unit
            line -= 1
        return line

    def doc_meta(node: ast.AST) -> dict:
        doc = ast.get_docstring(node)
        body = getattr(node, "body", [])
        if not doc or not body:
            return {"signature": _signature(node)} if isinstance(node, defs) else {}
        span = (body[0].lineno, body[0].end_lineno)
        return {"docstring": doc, "docstring_span": span, "signature": _signature(node) if isinstance(node, defs) else ""}

    def walk(body: list[ast.stmt], scope: str, container: str, grouped: bool = False) -> None:
        # grouped: the statements met now join the unit opened last (a class header's attributes)
        for node in body:
            if isinstance(node, defs):
                name = f"{scope}{node.name}"
                kind = "class" if isinstance(node, ast.ClassDef) else "function"
                units.append(Segment(first_line(node), node.end_lineno, kind, name, doc_meta(node)))
                if isinstance(node, ast.ClassDef):
                    walk(node.body, name + ".", "class", grouped=True)
                grouped = False
            elif not grouped:
                units.append(Segment(first_line(node), node.end_lineno, container, scope.rstrip("."), {}))
                grouped = True

    walk(tree.body, "", "module")
    meta = doc_meta(tree)
    public = [_signature(n) for n in tree.body if isinstance(n, defs) and not n.name.startswith("_")]
    if units:
        units[0].meta.update({"module_docstring": meta.get("docstring", ""), "public_names": public})
    return units, tree


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+:._])\1{2,}\s*$")


def _doc_segments(lines: list[str], language: str) -> list[Segment]:
    """One unit per heading; the heading path ('Install > From source') rides along."""
    headings: list[tuple[int, int, str]] = []  # (line, level, title)
    if language == "markdown":
        in_fence = False
        for i, line in enumerate(lines, start=1):
            if _FENCE.match(line):
                in_fence = not in_fence
            elif not in_fence and (m := _MD_HEADING.match(line)):
                headings.append((i, len(m.group(1)), m.group(2)))
    else:  # reStructuredText: a title underlined (and maybe overlined) by punctuation; level by first use
        styles: list[tuple[str, bool]] = []
        for i in range(1, len(lines)):
            title, under = lines[i - 1], lines[i]
            if title.strip() and not title.startswith(" ") and _RST_UNDERLINE.match(under) and len(under.rstrip()) >= len(title.rstrip()) and not _RST_UNDERLINE.match(title):
                over = i >= 2 and lines[i - 2].rstrip() == under.rstrip()
                style = (under[0], over)
                if style not in styles:
                    styles.append(style)
                headings.append((i - 1 if over else i, styles.index(style) + 1, title.strip()))
    units = [Segment(1, len(lines), "section", "", {"heading_path": "", "heading_lines": 0})]
    stack: list[tuple[int, str]] = []
    for line, level, title in headings:
        stack = [(lv, t) for lv, t in stack if lv < level] + [(level, title)]
        path = " > ".join(t for _, t in stack)
        n_heading = 1 if language == "markdown" else (3 if lines[line - 1].strip() and _RST_UNDERLINE.match(lines[line - 1]) else 2)
        units.append(Segment(line, len(lines), "section", path, {"heading_path": path, "heading_lines": n_heading}))
    return units


# --- fitting units to the token limit ------------------------------------------------------------

def header_reserve(counter: TokenCounter, path: str, symbol: str, max_tokens: int) -> int:
    """Tokens a chunk leaves free for its ``records.context_header`` (and the newline after it), so that
    header and text fit ``max_tokens`` together; at most a quarter of the limit (a header longer than
    that is cut by the model's window, not the chunk's text)."""
    return min(counter.per_line([context_header(path, symbol)])[0], max_tokens // 4)


class Chunker:
    """Chunks files for one tokenizer and limit; counts drops in ``stats``."""

    def __init__(self, counter: TokenCounter, max_tokens: int, stats: StageStats | None = None, context: bool = False):
        if max_tokens <= counter.special + 8:
            raise ValueError(f"chunk limit of {max_tokens} tokens is too small: use at least {counter.special + 16}")
        self.counter = counter
        self.max_tokens = max_tokens
        self.budget = max_tokens - counter.special  # tokens left for text
        self.context = context  # leave room for each chunk's context header (chunk.context)
        self.stats = stats if stats is not None else StageStats("chunk")

    def chunk_file(self, source: SourceFile) -> list[Chunk]:
        lines = source.text.split("\n")
        tree = statements = None
        units: list[Segment]
        if source.language == "python" and source.kind == "code":
            try:
                units, tree = _python_segments(source.text, lines)
            except (SyntaxError, ValueError, RecursionError):
                self.stats["python_syntax_fallback"] += 1
                units = [Segment(1, len(lines), "block")]
        elif source.language in ("markdown", "rst"):
            units = _doc_segments(lines, source.language)
        else:
            units, statements = self._code_units(source, lines)
        segments = _partition(units, len(lines))
        # tokens of lines[a-1 .. b-1] = prefix[b] - prefix[a - 1]: each range summed in O(1)
        prefix = list(itertools.accumulate(self.counter.per_line(lines), initial=0))
        cuts = _SplitPoints(lines, tree, statements)
        chunks: list[Chunk] = []
        seen: set[str] = set()
        for seg in segments:
            reserve = header_reserve(self.counter, source.path, seg.symbol, self.max_tokens) if self.context else 0
            for start, end, text, n_tokens in self._fit(seg.start, seg.end, lines, prefix, cuts, reserve):
                cid = chunk_id(source.path, start, end, text)
                while cid in seen:  # identical pieces of one over-long line
                    cid += "+"
                seen.add(cid)
                chunks.append(Chunk(cid, text, source.path, source.kind, source.language, start, end,
                                    seg.symbol, seg.chunk_type, n_tokens, source.commit, _piece_meta(seg, start, end, lines)))
        return chunks

    def _code_units(self, source: SourceFile, lines: list[str]):
        """Units (and statement lines) by tree-sitter where the language has a grammar, else one block;
        counted per language: ``structure_<language>``, ``blocks_<language>``, ``syntax_fallback_<language>``."""
        if source.kind == "code":
            try:
                found = syntax.code_segments(source.text, lines, source.language, source.path)
            except (syntax.SyntaxFailure, RecursionError):
                self.stats[f"syntax_fallback_{source.language}"] += 1
                found = None
            if found is not None:
                self.stats[f"structure_{source.language}"] += 1
                return found
            self.stats[f"blocks_{source.language}"] += 1
        return [Segment(1, len(lines), "block")], None

    def _fit(self, start: int, end: int, lines: list[str], prefix: list[int], cuts: _SplitPoints,
             reserve: int = 0) -> Iterator[tuple[int, int, str, int]]:
        """Yield (start, end, text, tokens) pieces of lines[start..end] that fit the limit less ``reserve``
        (the header's tokens): the longest prefix that fits, then the rest, in a loop (a unit of 100,000
        lines is 1,000s of pieces deep)."""
        budget, max_tokens = self.budget - reserve, self.max_tokens - reserve
        while True:
            while start <= end and not lines[start - 1].strip():
                start += 1
            while end >= start and not lines[end - 1].strip():
                end -= 1
            if start > end:
                return
            text = "\n".join(lines[start - 1 : end])
            estimate = prefix[end] - prefix[start - 1]
            if estimate <= budget:
                n_tokens = estimate + self.counter.special if self.counter.additive else self.counter.total(text)
                if n_tokens <= max_tokens:
                    yield start, end, text, n_tokens
                    return
            if start == end:  # one line over the limit: cut inside it
                self.stats["split_long_line"] += 1
                for piece in self.counter.split_line(lines[start - 1], budget):
                    yield start, end, piece, self.counter.total(piece)
                return
            # greedy: the longest prefix ending before a split point that fits; else split at lines
            points = cuts.get()
            inner = points[bisect.bisect_right(points, start) : bisect.bisect_right(points, end)]
            split_at = None
            for c in inner or range(start + 1, end + 1):
                if prefix[c - 1] - prefix[start - 1] > budget:  # the tokens of lines start .. c-1
                    break
                split_at = c
            if split_at is None:  # even the first block is too long: split it at lines instead
                split_at = next((c for c in range(start + 1, end + 1) if prefix[c] - prefix[start - 1] > budget), start + 1)
                split_at = max(split_at, start + 1)
            yield from self._fit(start, split_at - 1, lines, prefix, cuts, reserve)
            start = split_at


class _SplitPoints:
    """Where an over-long unit may split: statement starts (Python's ``ast``, or ``statements()`` from
    tree-sitter) and paragraph starts; computed only when a unit is over the limit, which few are."""

    def __init__(self, lines: list[str], tree: ast.Module | None, statements=None):
        self.lines, self.tree, self.statements, self._points = lines, tree, statements, None

    def get(self) -> list[int]:
        """The split points, sorted."""
        if self._points is None:
            lines = self.lines
            points = {i + 1 for i in range(1, len(lines)) if not lines[i - 1].strip() and lines[i].strip()}
            stack = list(self.tree.body) if self.tree is not None else []
            while stack:  # statements only: far fewer nodes than ast.walk's every expression
                node = stack.pop()
                if hasattr(node, "lineno"):
                    points.add(node.lineno)
                for name in ("body", "orelse", "finalbody", "handlers", "cases"):
                    stack.extend(getattr(node, name, None) or ())
            if self.statements is not None:
                points |= self.statements()
            self._points = sorted(points)
        return self._points


def _partition(units: list[Segment], n_lines: int) -> list[Segment]:
    """Turn unit starts into a partition of the file's lines: each unit runs to the next one's start."""
    units = sorted(units, key=lambda u: u.start)
    merged: list[Segment] = []
    for unit in units:
        if merged and merged[-1].start == unit.start:
            merged[-1] = unit  # the more specific unit (listed later) wins a shared start line
        else:
            merged.append(unit)
    if not merged:
        return [Segment(1, n_lines, "block")]
    merged[0].start = 1
    for current, nxt in zip(merged, merged[1:]):
        current.end = nxt.start - 1
    merged[-1].end = n_lines
    return merged


def _piece_meta(seg: Segment, start: int, end: int, lines: list[str]) -> dict:
    """Structure the pair miner needs, for the piece [start, end] of a segment."""
    meta = {k: v for k, v in seg.meta.items() if k not in ("docstring_span", "docstring", "docstring_leads", "heading_lines")}
    span = seg.meta.get("docstring_span")
    holds = bool(span) and start <= span[0] <= end
    if span and seg.meta.get("docstring_leads"):
        # a doc comment above its definition (pipeline/ingest/syntax.py): a long one may fill pieces of its own,
        # so the docstring goes with the piece where the code starts
        first_code = next((i for i in range(span[1] + 1, end + 1) if lines[i - 1].strip()), 0)
        holds = start <= first_code <= end
    if holds:
        meta["docstring"] = seg.meta["docstring"]
        meta["code_without_docstring"] = "\n".join(
            line for i, line in enumerate(lines[start - 1 : end], start=start) if not span[0] <= i <= span[1]
        ).strip("\n")
    n_heading = seg.meta.get("heading_lines", 0)
    if n_heading and start == seg.start and seg.symbol:
        meta["section_body"] = "\n".join(lines[start - 1 + n_heading : end]).strip("\n")
    return meta


def chunk_source(source: SourceFile, chunker: Chunker, min_chars: int) -> list[Chunk]:
    """One file's chunks; pieces shorter than ``min_chars`` are dropped and counted."""
    stats = chunker.stats
    stats["files"] += 1
    kept = []
    for chunk in chunker.chunk_file(source):
        if len(chunk.text.strip()) < min_chars:
            stats.drop("too_short", chunk.id)
            continue
        stats["kept"] += 1
        stats[f"kind_{chunk.kind}"] += 1
        kept.append(chunk)
    return kept


def chunk_files(files: Iterable[SourceFile], chunker: Chunker, min_chars: int) -> Iterator[Chunk]:
    """Each file's chunks by ``chunk_source``, the function ``workers.ingest`` runs per file, in one process."""
    for source in files:
        yield from chunk_source(source, chunker, min_chars)
