"""labelling: what the labelling view of `repotune serve` does to a run's question set and drafts, each call one atomic
write through ``questions.QuestionFile``. The view (pipeline/serve.py) only renders and routes; ``comparison`` is its
loaded run (``serve.Comparison``: the run, its corpus rows, their positions and rows by file, the systems' pool)."""

from __future__ import annotations

import shlex
from pathlib import Path

from ..common import squash
from ..errors import RepotuneError
from ..rundir import RunDir
from .drafts import drafts_path
from .questions import QuestionError, QuestionFile, matches, matching, relabel


class LabelError(RepotuneError, ValueError):
    """A labelling request the page can correct (no tick, no question text); the message says what to do."""


def labelled_set(run: RunDir) -> Path:
    """Where the labelling view saves: the run's question set when it lies in the run directory; else the run's own
    questions.jsonl, begun as a copy of that set. The view never writes outside the run (a set in a checkout, such as
    `make train`'s quality/questions.jsonl, is a tracked file: labelling must not edit it behind git's back)."""
    import shutil

    configured = run.questions
    if configured.resolve().is_relative_to(run.root.resolve()):
        return configured
    own = run.root / "questions.jsonl"
    if not own.exists() and configured.is_file():
        shutil.copyfile(configured, own)
    return own


class Labelling:
    """What the labelling view does to the run's question set and drafts; each call one atomic write."""

    def __init__(self, comparison, minimum: int):
        self.comparison = comparison
        self.questions = QuestionFile(labelled_set(comparison.run))
        self.drafts = QuestionFile(drafts_path(comparison.run))
        self.minimum = minimum

    def evaluate_command(self) -> str:
        run = self.comparison.run.root
        return f"repotune evaluate {shlex.quote(str(run))} --set evaluate.questions={shlex.quote(str(self.questions.path))}"

    def source(self, mode: str, line: int, digest: str) -> dict | None:
        """The question being edited (mode "edit") or the draft being kept ("draft"); None for a new one."""
        if mode not in ("new", "edit", "draft"):
            raise LabelError(f"unknown mode {mode!r}: reload the page")
        return None if mode == "new" else (self.questions if mode == "edit" else self.drafts).get(line, digest)

    def save(self, query: str, chunk_ids: list[str], mode: str = "new", line: int = 0, digest: str = "",
             keep_entries: list[int] = ()) -> str:
        """Save a question with the ticked chunks: append it (new), rewrite its line (edit), or move a draft
        into the set (draft). ``keep_entries``: indexes of the old entries that resolve to no chunk of this
        corpus and are to stay. Returns what the page says it did."""
        c = self.comparison
        self.questions.writable()  # a malformed set refuses before anything else is looked at
        if mode == "draft":
            self.drafts.writable()  # and a malformed drafts file before the set is written, not after
        query = " ".join(query.split())
        if not query:
            raise LabelError("type the question first")
        unknown = [i for i in chunk_ids if i not in c.position]
        if unknown:
            raise LabelError(f"chunk {unknown[0]} is not in this run's corpus: reload the page")
        ticked = [c.rows[c.position[i]] for i in dict.fromkeys(chunk_ids)]
        old = self.source(mode, line, digest)
        old_entries = list(old["relevant"]) if old else []
        keep = set(keep_entries)
        unmatched = [e for i, e in enumerate(old_entries) if i in keep and not matching(e, c.by_file)]
        if not ticked and not unmatched:
            raise LabelError(f"tick at least one chunk that answers {query!r}, then save")
        relevant = relabel(old_entries, ticked, c.by_file, unmatched)
        missed = [r["id"] for r in ticked if not any(matches(e, r) for e in relevant)]
        if missed:  # the contract of entry_for: what is written resolves back to what was ticked
            raise QuestionError(f"the entries written for {query!r} would not resolve to chunk {missed[0]}: a bug, please report it")
        item = {"query": query, "relevant": relevant}
        same = [q.number for q in self.questions.lines() if squash(q.item["query"]) == squash(query)]
        if same and not (mode == "edit" and same == [line]):
            raise LabelError(f"{query!r} is question {same[0]} already: edit that one instead")
        if mode == "edit":
            self.questions.replace(line, digest, item)
            return f"saved question {line}: {query!r}"
        if mode == "draft":
            number = self.questions.append(item)
            self.drafts.delete(line, digest)
            return f"kept the draft as question {number}: {query!r}"
        number = self.questions.append(item)
        return f"saved question {number}: {query!r}"

    def delete(self, line: int, digest: str) -> str:
        return f"deleted question {line}: {self.questions.delete(line, digest)['query']!r}"

    def discard(self, line: int, digest: str) -> str:
        return f"discarded the draft {self.drafts.delete(line, digest)['query']!r}"
