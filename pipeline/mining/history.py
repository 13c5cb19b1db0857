"""history: the repository's commit messages -> the definitions at HEAD they touched.

Every git repository carries sentences its developers wrote about specific code: commit subjects.

1. read ``git log --no-merges -p -U0`` (newest first, at most ``history.max_commits``, within
   ``history.since``), hunk headers naming their enclosing function by git's built-in diff drivers
   (a temporary attributes file: ``*.py diff=python``, ...);
2. judge each message (the rules below return a reason, as every stage's do) and clean the kept ones:
   the subject, without trailers, issue and PR references, URLs, e-mail addresses, @-mentions or the
   commit's own names;
3. place each hunk at HEAD (``place_hunks``) and drop commits that touch no definition, or more than
   ``history.max_definitions``; run every kept message through the files' secret scan;
4. split by time: the newest ``history.holdout_share`` of the kept commits (at least
   ``history.min_holdout`` where the history allows) are the history yardstick, written to
   ``RUN/history/heldout.jsonl`` and never trained on; the older ones feed ``commit_definition`` pairs.

Outside a git work tree, in a repository without commits or with git missing, nothing is read and
the manifest's ``history.reason`` says why (``stats/history.json`` holds counts only); a shallow
clone is read as far as it goes, its boundary commits dropped (their diff is the whole tree, against
nothing).

One stage: read the log, judge and clean its messages (the rules and the cleaning are ``mining.messages``), place
hunks at HEAD, and write the held-out file. Evaluation reads that file back (``evaluation.questions.heldout_questions``):
the yardstick is evaluation's, mining only sets it aside.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..common import squash
from ..config import HistoryConfig
from ..ingest.collect import in_work_tree
from ..records import Chunk
from ..rundir import HELDOUT
from ..stage import StageStats
from .messages import clean_message, message_reason, subject_of

log = logging.getLogger("repotune")

MESSAGE_PATH = "COMMIT_EDITMSG"  # the name a message is scanned under (git's own for it)

# git's built-in diff drivers: the hunk header then names the enclosing function or class. JavaScript
# and TypeScript have none (git's default header, the last line starting with a letter, is used)
_DRIVERS = {"python": ("py", "pyi"), "golang": ("go",), "rust": ("rs",), "java": ("java",), "kotlin": ("kt", "kts"),
            "cpp": ("c", "h", "cc", "cpp", "cxx", "hh", "hpp", "hxx"), "csharp": ("cs",), "ruby": ("rb", "rake"),
            "php": ("php",)}
_ATTRIBUTES = "".join(f"*.{ext} diff={driver}\n" for driver, exts in _DRIVERS.items() for ext in exts)
# settings a user's git config could change and the parser relies on
_GIT_SETTINGS = ("core.quotePath=false", "diff.noprefix=false", "diff.mnemonicPrefix=false", "log.showSignature=false",
                 "diff.renames=true", "color.ui=false")
_START, _END = "\x00", "\x00"  # around each commit's header (%x00 to git): no diff line and no message holds a NUL

# --- 1. the log ----------------------------------------------------------------------------------

MIN_LINE_CHARS = 6  # an added line shorter than this (stripped: `pass`, `else:`, `})`) places nothing


@dataclass
class Hunk:
    name: str  # the definition git's diff driver names in the header ("" when it names none)
    lines: list[int] = field(default_factory=list)  # hashes of the added lines, stripped, of MIN_LINE_CHARS or more


@dataclass
class LoggedCommit:
    sha: str
    time: int  # committer time, seconds since the epoch
    message: str  # cleaned
    hunks: dict[str, list[Hunk]] = field(default_factory=dict)  # path -> hunks, only paths with definitions at HEAD


@dataclass(frozen=True)
class Commit:
    """A kept commit: its cleaned message and the definitions at HEAD it touched, as (path, symbol)."""

    sha: str
    time: int
    message: str
    definitions: tuple[tuple[str, str], ...]


@dataclass
class History:
    train: list[Commit] = field(default_factory=list)  # older: commit_definition pairs
    heldout: list[Commit] = field(default_factory=list)  # newest: the history yardstick
    reason: str = ""  # why nothing, or less than the history, was read


_HEADER_NAME = re.compile(r"\b(?:def|class|func|fn|function|sub|struct|enum|interface|trait|impl|module|object|record)\s+"
                          r"(?:\([^)]*\)\s*)?([A-Za-z_$][\w$]*)")
_CALL_NAME = re.compile(r"([A-Za-z_$][\w$]*)\s*\(")
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@ ?(.*)$")


def header_name(header: str) -> str:
    """The definition's name in a hunk header: ``def load(self, p):`` -> load, ``func (e *Engine) Run(`` -> Run."""
    m = _HEADER_NAME.search(header) or _CALL_NAME.search(header)
    return m.group(1) if m else ""


def _unquote(path: str) -> str:
    """A path as git prints it: C-quoted when it holds a quote, a backslash or a control character."""
    if path.startswith('"') and path.endswith('"'):
        raw = path[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
        return raw.encode("latin-1", "replace").decode("utf-8", "replace")
    return path


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, timeout=60)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    return out.stdout.decode("utf-8", "replace").strip() if out.returncode == 0 else None


def _why_not(root: Path, config: HistoryConfig) -> str:
    """Why the log cannot be read here ("" when it can)."""
    if not config.enabled:
        return "off (history.enabled: false)"
    try:
        subprocess.run(["git", "--version"], capture_output=True, timeout=30)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return "git not found"
    if not in_work_tree(root):
        return "not a git repository"
    if _git(root, "rev-parse", "--verify", "-q", "HEAD") is None:
        return "no commits"
    return ""


def read_log(root: Path, config: HistoryConfig, paths: set[str], stats: StageStats,
             boundary: set[str] = frozenset()) -> Iterator[LoggedCommit]:
    """Stage: the commits of ``git log`` whose message passes MESSAGE_RULES and ``history.min_words``,
    newest first, each with its hunks in ``paths`` (the files with definitions at HEAD). Drops are counted;
    ``boundary`` (a shallow clone's boundary commits) are dropped as ``shallow_boundary``."""
    with tempfile.TemporaryDirectory(prefix="repotune-history-") as tmp:
        attributes = Path(tmp) / "attributes"
        attributes.write_text(_ATTRIBUTES)
        settings = [arg for setting in (*_GIT_SETTINGS, f"core.attributesFile={attributes}") for arg in ("-c", setting)]
        command = ["git", "-C", str(root), *settings, "log", "--no-merges", "-p", "-U0", "-M", "--relative", "--no-ext-diff",
                   "--no-textconv", "--diff-filter=AMR", "--encoding=UTF-8", f"--max-count={config.max_commits}",
                   "--format=%x00%H %ct%n%an%n%cn%n%B%x00"]
        if config.since:
            command.append(f"--since={config.since.strip()} ago")
        # the diff never leaves this process: each added line becomes a hash, and only for files with definitions
        process = subprocess.Popen([*command, "--", "."], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            yield from _parse(process.stdout, config, paths, stats, boundary)
        finally:
            process.stdout.close()
            process.kill()
            process.wait()


def _parse(stream, config: HistoryConfig, paths: set[str], stats: StageStats, boundary) -> Iterator[LoggedCommit]:
    commit: LoggedCommit | None = None
    hunks: list[Hunk] | None = None  # the current file's, None when the file is not one to read
    hunk: Hunk | None = None
    in_header = False  # between `diff --git` and the file's first hunk: `+++ b/path` is a header there
    lines = (raw.decode("utf-8", "replace").rstrip("\n") for raw in stream)
    for line in lines:
        if line.startswith(_START):
            if commit is not None:
                yield commit
            sha, _, when = line[1:].partition(" ")
            author, committer = next(lines, ""), next(lines, "")
            message = []
            for body in lines:
                if _END in body:
                    message.append(body.split(_END, 1)[0])
                    break
                message.append(body)
            stats["commits_read"] += 1
            raw = "\n".join(message)
            reason = "shallow_boundary" if sha in boundary else message_reason(subject_of(raw))
            cleaned = clean_message(raw, (author, committer)) if reason is None else ""
            if reason is None and len(cleaned.split()) < config.min_words:
                reason = "too_short"
            if reason:
                stats.drop(reason, sha)
                commit = None
            else:
                commit = LoggedCommit(sha, int(when or 0), cleaned)
            hunks = hunk = None
            continue
        if commit is None:
            continue
        if line.startswith("diff --git "):
            in_header, hunks, hunk = True, None, None
        elif in_header and line.startswith("+++ "):
            path = line[4:]
            path = _unquote(path)
            path = path[2:] if path.startswith("b/") else ""
            hunks = commit.hunks.setdefault(path, []) if path in paths else None
        elif line.startswith("@@ ") and hunks is not None:
            in_header = False
            m = _HUNK.match(line)
            hunk = Hunk(header_name(m.group(1)) if m else "")
            hunks.append(hunk)
        elif line.startswith("@@ "):
            in_header = False
        elif hunk is not None and not in_header and line.startswith("+"):
            text = line[1:].strip()
            if len(text) >= MIN_LINE_CHARS:
                hunk.lines.append(hash(text))
    if commit is not None:
        yield commit


# --- 3. placing hunks at HEAD -------------------------------------------------------------------------

_MODULE, _REPEATED = ("", "<module>"), ("", "<repeated>")  # a line outside any definition; a line found twice or more


def line_index(chunks: Iterable[Chunk], wanted: dict[str, set[int]], definitions: set[tuple[str, str]]) -> dict[tuple[str, int], tuple[str, str]]:
    """(path, line hash) -> the definition at HEAD whose chunk holds that line, for the lines in
    ``wanted`` (path -> hashes): ``_MODULE`` outside any definition, ``_REPEATED`` when the file holds the
    line more than once. One pass over the chunks, keeping only the wanted lines."""
    found: dict[tuple[str, int], tuple[str, str]] = {}
    for c in chunks:
        want = wanted.get(c.path)
        if not want or c.kind != "code":
            continue
        key = (c.path, c.symbol) if c.chunk_type in ("function", "class") and (c.path, c.symbol) in definitions else _MODULE
        for text in c.text.split("\n"):
            h = hash(text.strip())
            if h in want:
                found[(c.path, h)] = _REPEATED if (c.path, h) in found else key
    return found


def place_hunks(commit: LoggedCommit, index: dict, by_name: dict[tuple[str, str], list[str]], stats: StageStats) -> set[tuple[str, str]]:
    """The definitions at HEAD a commit touched. Each hunk is placed by its added lines that occur once
    in the file at HEAD: a line's text survives the later commits that shift its number. A hunk that
    added no such line (a deletion, lines that repeat in the file, only short lines) falls back to the
    name git's diff driver gives in its header, when that name is one definition of the file. A hunk
    whose added lines are all gone from HEAD places nothing: the code it wrote is not there to find."""
    touched: set[tuple[str, str]] = set()
    for path, hunks in commit.hunks.items():
        for hunk in hunks:
            found = [index.get((path, h)) for h in hunk.lines]
            unique = [f for f in found if f is not None and f != _REPEATED]
            if unique:
                touched.update(f for f in unique if f != _MODULE)
                stats["hunks_by_lines"] += 1
            elif (not hunk.lines or _REPEATED in found) and len(targets := by_name.get((path, hunk.name), [])) == 1:
                touched.add((path, targets[0]))
                stats["hunks_by_name"] += 1
            else:
                stats["hunks_unplaced"] += 1
    return touched


# --- the stage ------------------------------------------------------------------------------------

def heldout_count(kept: int, config: HistoryConfig) -> int:
    """The newest ``holdout_share`` of ``kept`` commits, at least ``min_holdout``, never more than half."""
    return min(max(math.ceil(kept * config.holdout_share), config.min_holdout), kept // 2)


def read_history(root: str | Path, config: HistoryConfig, definitions: Iterable[tuple[str, str]], chunks: Callable[[], Iterable[Chunk]],
            stats: StageStats, scanner_factory: Callable | None = None) -> History:
    """Stage: the kept commits of ``root``'s history, split by time. ``definitions``: the run's (path,
    symbol) definitions (pairs.PairMiner.definitions); ``chunks()`` streams the run's chunks (their
    text is read for the lines commits added, then dropped). Counts land in ``stats``."""
    root = Path(root).resolve()
    out = History(reason=_why_not(root, config))
    stats["commits_read"] += 0
    if out.reason:
        log.debug("history: %s; no commits read", out.reason)  # the build's summary line says so
        return out
    boundary: set[str] = set()
    if _git(root, "rev-parse", "--is-shallow-repository") == "true":
        shallow = _git(root, "rev-parse", "--git-path", "shallow")
        file = (root / shallow) if shallow else None
        boundary = set(file.read_text().split()) if file and file.is_file() else set()
        out.reason = f"shallow clone: {_git(root, 'rev-list', '--count', 'HEAD')} commit(s)"
        log.debug("history: %s, read as far as it goes", out.reason)
    definitions = set(definitions)
    by_name: dict[tuple[str, str], list[str]] = {}
    for path, symbol in sorted(definitions):
        by_name.setdefault((path, symbol.rsplit(".", 1)[-1]), []).append(symbol)
    paths = {path for path, _ in definitions}
    logged = list(read_log(root, config, paths, stats, boundary))

    wanted: dict[str, set[int]] = {}
    for commit in logged:
        for path, hunks in commit.hunks.items():
            wanted.setdefault(path, set()).update(h for hunk in hunks for h in hunk.lines)
    index = line_index(chunks(), wanted, definitions) if wanted else {}
    placed: list[Commit] = []
    seen: set[str] = set()
    for commit in logged:  # newest first: of two commits with one message, the newest stays
        touched = place_hunks(commit, index, by_name, stats)
        key = squash(commit.message)
        if not touched:
            stats.drop("no_definition", commit.sha)
        elif len(touched) > config.max_definitions:
            stats.drop("too_many_definitions", commit.sha)
        elif key in seen:
            stats.drop("duplicate_message", commit.sha)
        else:
            seen.add(key)
            placed.append(Commit(commit.sha, commit.time, commit.message, tuple(sorted(touched))))
    kept = _without_secrets(placed, stats, scanner_factory)
    kept.sort(key=lambda c: c.time, reverse=True)  # stable: git's order among commits of one second
    n = heldout_count(len(kept), config)
    out.heldout, out.train = kept[:n], kept[n:]
    stats["kept"] += len(kept)
    stats.update({"heldout_commits": len(out.heldout), "train_commits": len(out.train)})
    return out


def _without_secrets(commits: list[Commit], stats: StageStats, scanner_factory) -> list[Commit]:
    """Commits whose message has no finding of the files' secret scan, under each name it will be read
    by (the message itself, the pairs' paths, the held-out file); a message with one is dropped."""
    if not commits:
        return []
    from ..secrets import SecretScanner

    kept = []
    with (scanner_factory or SecretScanner)() as scanner:
        for c in commits:
            names = {MESSAGE_PATH, HELDOUT.as_posix(), *(path for path, _ in c.definitions)}
            if any(scanner.scan(c.message, name) for name in sorted(names)):
                stats.drop("secret", c.sha)  # never logged with its text
            else:
                kept.append(c)
    return kept


def write_heldout(run_root: Path, commits: list[Commit]) -> Path:
    """RUN/history/heldout.jsonl: one question-set line per held-out commit (docs/evaluation.md, "Question sets"),
    with its commit and time, so evaluate needs no git."""
    path = run_root / HELDOUT
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for c in commits:
            item = {"query": c.message, "relevant": [{"path": p, "symbol": s} for p, s in c.definitions], "commit": c.sha, "time": c.time}
            f.write(json.dumps(item, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path
