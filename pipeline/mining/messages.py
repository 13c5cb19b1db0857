"""messages: a commit message judged and cleaned for the history stage (``mining.history``, step 2). The rules return a
reason to drop a message (merges, reverts, fixups, dependency and version bumps, typos, formatting, lint), as every
stage's rules do; the kept subject is cleaned of trailers, a conventional-commit prefix, issue and PR references, URLs,
e-mail addresses, @-mentions and the names of the people involved."""

from __future__ import annotations

import re
from collections.abc import Iterable

# the rules (a reason, or None to keep), in order; the first that matches counts
MESSAGE_RULES: list[tuple[str, re.Pattern]] = [
    # a merge or squash-merge subject names branches, not code
    ("merge", re.compile(r"^merge(d)?\s+(branch|pull request|remote-tracking|tag|commit|changes|master|main|upstream)\b|^merge\b.*\binto\b", re.I)),
    # a revert repeats the reverted subject, and says the opposite of it
    ("revert", re.compile(r"^revert\b", re.I)),
    # work in progress and autosquash markers: not a description yet
    ("fixup", re.compile(r"^(fixup|squash|amend)!|^wip\b", re.I)),
    # bots' and people's dependency bumps touch lock files and pins, not the code's meaning
    ("dependency_update", re.compile(
        r"^(chore|build|fix)\(deps(-dev)?\)|\bbump(s|ed)?\s+\S+\s+from\s+\S+\s+to\b|\bdependabot\b|\brenovate\b|"
        r"\b(update|upgrade|bump|pin)\w*\s+(the\s+|all\s+)?(dependenc(y|ies)|deps|requirements|lock\s?files?|\S+\.lock|package(-lock)?\.json)\b", re.I)),
    # releases and version numbers
    ("version_bump", re.compile(
        r"^chore\(release\)|^(release|prepare(\s+for)?\s+release|version)\b|\bbump(s|ed)?\b.*\b(version|v?\d+\.\d+)|"
        r"\bversion\s+bump\b|\b(set|update)\s+(the\s+)?version\b|^v?\d+(\.\d+)+\b", re.I)),
    ("typo", re.compile(r"\btypos?\b|\bspelling\b|\bmisspel", re.I)),
    # formatting: the subject says so, or names a formatter
    ("format", re.compile(r"^style[(:!]|^(re)?format(ted|ting)?\b|\b(run|ran|apply|applied)\s+(black|isort|prettier|gofmt|rustfmt|"
                          r"clang-format|autopep8|yapf|ruff\s+format)\b|\bwhitespace\b|\btrailing\s+spaces?\b|\bcode\s+style\b|\bpep\s?8\b", re.I)),
    ("lint", re.compile(r"\blint(s|ing|er|ers)?\b|\b(flake8|pylint|eslint|mypy|pyflakes|clippy|golint|rubocop|pre-commit)\b", re.I)),
]
# trailer lines (``Signed-off-by: A <a@b>``, ``Fixes: #12``, ``Change-Id: I...``): bookkeeping, and names
_TRAILER = re.compile(r"^\s*([A-Za-z][\w]*(-[\w]+)+|fixes|closes|resolves|refs?|see|bug|issue|cc|reviewers?|tags?):\s", re.I)
_CO_AUTHOR = re.compile(r"^\s*[\w-]*-by:\s*([^<\n]+?)\s*(<[^>]*>)?\s*$", re.I | re.M)
_CONVENTIONAL = re.compile(r"^(feat|feature|fix|bugfix|hotfix|docs?|refactor|perf|tests?|build|ci|chore)(\([^)]*\))?!?:\s*", re.I)
_REFERENCES = [
    re.compile(r"\b(fix(es|ed)?|close[sd]?|resolve[sd]?|refs?|see|part\s+of)\s*:?\s*([\w.-]+/[\w.-]+)?(#|gh-|!)\d+\b", re.I),
    re.compile(r"\b[\w.-]+/[\w.-]+#\d+\b"),  # owner/repo#12
    re.compile(r"(?<![\w&])(#|gh-|GH-|!)\d+\b"),  # #12, GH-12, !12 (a GitLab merge request)
    re.compile(r"\b(?!(UTF|UCS|SHA|MD|CRC|ISO|IEC|RFC|PEP|AES|RSA|ECMA|TLS|HTTP)-)[A-Z][A-Z0-9]+-\d+\b"),  # a tracker key, PROJ-123
    re.compile(r"\b(https?|ftp)://\S+|\bwww\.\S+", re.I),
    re.compile(r"<?[\w.+-]+@[\w-]+(\.[\w-]+)+>?"),  # e-mail addresses
    re.compile(r"(?<![\w@.])@[A-Za-z0-9][\w-]*"),  # @-mentions
    re.compile(r"\[(skip ci|ci skip|no ci|skip actions)\]", re.I),
    # thanks to a person: their name or handle (removed above) is the point of it
    re.compile(r"\b(thanks|thank you|thx|kudos|h/t)\b(\s+to)?(\s+[A-Z][\w-]*){0,2}", re.I),
]
# words left dangling at the end once a reference or URL is gone: "see", "(fixes", "mail me at"
_DANGLING = re.compile(r"[\s,;:(\[-]+\b(see|cf|via|refs?|for|from|by|at|in|to|and|with|per|thanks)\b[\s.,;:-]*$", re.I)
# brackets left holding nothing but filler once references and names are gone: "(#12)", "(thanks @bob)"
_EMPTY_BRACKETS = re.compile(r"[(\[]\s*((thanks?|thx|by|to|via|from|for|reported|see|and|with|pr|issue|,|;|:)\s*)*[)\]]", re.I)


def message_reason(subject: str) -> str | None:
    """The first rule of MESSAGE_RULES that ``subject`` (as written) matches, or None."""
    return next((reason for reason, rule in MESSAGE_RULES if rule.search(subject)), None)


def subject_of(raw: str) -> str:
    """The subject as git reads it (the first paragraph, lines joined), without the trailer lines a
    message without a blank line before its trailers carries in it."""
    lines = raw.strip().split("\n\n", 1)[0].split("\n") if raw.strip() else []
    return " ".join(line.strip() for i, line in enumerate(lines) if not (i and _TRAILER.match(line)))


def clean_message(raw: str, names: Iterable[str] = ()) -> str:
    """The subject of a commit message, without trailers, a conventional-commit prefix, issue and PR
    references, URLs, e-mail addresses, @-mentions and ``names`` (the commit's author and committer,
    and the people its trailers name), in one line."""
    names = {*names, *(m.group(1).strip() for m in _CO_AUTHOR.finditer(raw))}
    text = _CONVENTIONAL.sub("", subject_of(raw))
    for pattern in _REFERENCES:
        text = pattern.sub(" ", text)
    for name in sorted(filter(lambda n: len(n) >= 3, names), key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(name)}(?!\w)", " ", text)
    while _EMPTY_BRACKETS.search(text):
        text = _EMPTY_BRACKETS.sub(" ", text)
    text = re.sub(r"\s+([,.;:!?)])", r"\1", " ".join(text.split()))
    while _DANGLING.search(text):
        text = _DANGLING.sub("", text)
    return text.strip(" ,;:-").strip()
