"""scanner: find every secret with three scanners, let the judge look again at the generic findings, redact exact spans.

Three scanners, unioned, each configured once per process:

1. **Kingfisher** (``kingfisher_sdk``): a maintained catalog of ~490 vendor rules (gitleaks' successor
   betterleaks and Google's veles), Hyperscan-compiled, offline and in process; it also looks inside
   base64. Every finding comes with its exact byte span.
2. **detect-secrets**: its default plugins (keywords, high-entropy strings, AWS, JWT, Slack, ...) with
   the filters that drop real values by shape or by an inline allowlist turned off (a dataset is
   published: a developer's ``# pragma: allowlist secret`` must not decide what goes out).
   detect-secrets reports a *value*, sometimes only a capture group's prefix (``ghp``, ``glpat``) or a
   fixed-length head (a JWT without its signature, a Stripe key's first 24 characters): its value is
   located on its line and widened to the whole token around it.
3. **repotune's rules** (``catalog.py``): the generic forms (secret-named names in any syntax,
   URLs and connection strings, command lines, headers, base64-wrapped credentials, key armours).

A finding's span is redacted exactly (``<SECRET:type>``); other occurrences of the same value in the
file only when the value is credential-shaped (so a false value such as ``password`` never rewrites
prose). The report lists type, path and line of each finding, never the value.

Generic findings (entropy, keywords, repotune's shape rules) go to ``judge`` before they count. Over 350
lines: the three scanners' union is one piece (each scanner's spans, widened, merged, typed, redacted); the
name and value predicates are in ``values``, the rules in ``catalog``, the file rules in ``files``, the
build's stage in ``redaction``.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import itertools
import os
import re
import textwrap
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.core.scan import _process_line_based_plugins
from detect_secrets.settings import transient_settings

from .catalog import RULES, SPECIFIC_RULES, rule_spans
from .judge import defined_names, not_a_secret
from .values import is_credential_shaped, is_placeholder, is_wordlike

# Cheap pre-filter: detect-secrets scans ~0.2 MB/s, so only lines that could hold a secret *value*
# go to it: a long token-like run with a digit (keys, tokens, high-entropy strings), a long quoted run
# without one, a URL with credentials, a private-key header, an IPv4 address, a secret-ish name
# assigned a literal (the words of detect-secrets' keyword plugin among them: `db_pass`,
# `contraseña`), or credentials on a command line (curl -u / --user, httpie -a / --auth, --password).
# Kingfisher and repotune's rules read the whole text, not these lines.
# Each pattern runs once over a whole file, none can match across a line break, so a line is a
# candidate exactly when a pattern matches inside it; the names are matched on the text with ASCII
# letters lowered (the four other letters that re's IGNORECASE folds to ASCII included), which is
# the same match as a case-insensitive pattern at a tenth of the cost.
_CANDIDATE_PATTERNS = tuple(re.compile(p) for p in (
    r"(?<![\w+/=\-])(?=[\w+/=\-]{16})[A-Za-z+/=_\-]*\d",
    r"[\"'][A-Za-z+/=_\-]{24,}[\"']",
    r"://[^\s]*@",
    r"-----BEGIN",
    r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b",
    r"(?<![\w\-])-(?:[uUa]|-[\w\-]*(?:user|passw|auth))",
    r"\d{8,10}:[\w\-]{30}",  # a Telegram bot token: its 35 characters after the id hold no digit once in 250
))
_CANDIDATE_NAME = re.compile(r"(?:key|secret|token|pass|pwd|auth|credential|bearer|contrase)[^=:\n]{0,40}[=:>][^\S\n]*[\"'\w]")
_FOLD = str.maketrans({**{chr(c): chr(c + 32) for c in range(ord("A"), ord("Z") + 1)},
                       "\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})


def candidate_lines(text: str) -> list[tuple[int, str]]:
    """(1-based line number, line) of each line that could hold a secret value, in order."""
    lines = text.split("\n")
    starts = _line_starts(text)
    found: set[int] = set()
    for pattern, haystack in [*((p, text) for p in _CANDIDATE_PATTERNS), (_CANDIDATE_NAME, text.translate(_FOLD))]:
        found.update(bisect.bisect_right(starts, m.start()) for m in pattern.finditer(haystack))
    return [(n, lines[n - 1]) for n in sorted(found)]


# detect-secrets filters that suit reviewing a diff but not publishing text: each would let a real
# value through into a public dataset.
_DISABLED_FILTERS = (
    # skips every line shaped `x = f(...)`, so `client = OpenAI(api_key="sk-...")` or
    # `conn = connect("postgres://user:pw@host")` would pass unredacted
    "detect_secrets.filters.heuristic.is_indirect_reference",
    # skips any path containing "swagger"; a key in docs/swagger.yaml is still a key
    "detect_secrets.filters.heuristic.is_swagger_file",
    # drop values by shape: UUID-shaped tokens (`HEROKU_API_KEY=<uuid>`, npm `_authToken=<uuid>`), and any
    # value on a line with `_id` before it (`client_id = "x", client_secret = "..."`)
    "detect_secrets.filters.heuristic.is_potential_uuid",
    "detect_secrets.filters.heuristic.is_likely_id_string",
    # a developer's `# pragma: allowlist secret` is for their own CI, not for what a dataset publishes
    "detect_secrets.filters.allowlist.is_line_allowlisted",
)
_PLACEHOLDER = re.compile(r"<SECRET:[a-z0-9_]+>")
# detectors that flag anything secret-shaped; a specific detector's type wins when both flag one span
_GENERIC_TYPES = {
    "base64_high_entropy_string", "hex_high_entropy_string", "secret_keyword", "generic_credential_uri",
    *(rule.id for rule in RULES if rule.id not in SPECIFIC_RULES),
}
# what the judge looks at again: the generic detectors, and the specific ones whose value is a URL's or a
# DSN's password (a vendor's token is a secret wherever it stands: never judged)
_JUDGED_TYPES = _GENERIC_TYPES | {"basic_auth_credentials", "mongodb_connection_string", "curl_auth_user"}
# detect-secrets' value is widened to the whole token around it (its GitHub and GitLab patterns capture
# only the prefix, its JWT pattern stops before the signature, its Stripe pattern at 24 characters)
_TOKEN_CHAR = re.compile(r"[\w\-+/.~]")


def whole_token(text: str, start: int, end: int) -> tuple[int, int]:
    """The span ``start:end`` of ``text`` widened to the whole token around it (trailing ``=`` padding included)."""
    while start > 0 and _TOKEN_CHAR.match(text[start - 1]):
        start -= 1
    while end < len(text) and (_TOKEN_CHAR.match(text[end]) or text[end] == "="):
        end += 1
    return start, end


def secret_slug(secret_type: str) -> str:
    """'AWS Access Key' -> 'aws_access_key': the typed placeholder and report name."""
    return re.sub(r"[^a-z0-9]+", "_", secret_type.lower()).strip("_")


@dataclass(frozen=True)
class Finding:
    type: str
    path: str
    line: int


# Kingfisher rules that find identifiers, not secrets (a client id, an account name, a host, a
# publishable key): redacting them would damage the corpus and protect nothing.
_KINGFISHER_NOT_SECRETS = re.compile(
    r"(?:(?<!key)-id|-domain|-username|-instance-url|-project-url|-rest-url|-jfrog-url|-host|-name|-address|"
    r"-public-key|-pub-key|-pub-api-key)(?:\.\d+)?$")


@functools.cache
def _kingfisher(pid: int):
    """The catalog, compiled once per process (a forked worker builds its own; Kingfisher caches the
    compiled rules on disk, so that takes well under a second after the first time)."""
    from kingfisher_sdk import Rules, Scanner

    return Scanner(Rules(confidence="low"))


def kingfisher_rules() -> list[dict]:
    """The catalog's rules in use: id and what they find."""
    from kingfisher_sdk import Rules

    return [m for m in Rules(confidence="low").metadata() if not _KINGFISHER_NOT_SECRETS.search(m["id"])]


def _kingfisher_slug(rule_id: str) -> str:
    return secret_slug(re.sub(r"^(?:betterleaks\.|veles\.secrets/)", "", re.sub(r"\.\d+$", "", rule_id)))


@dataclass(frozen=True)
class Hit:
    """One finding: its type, exact character span, 1-based line, and the value (never written out)."""

    type: str
    start: int
    end: int
    line: int
    value: str


class RedactionError(RuntimeError):
    """Redaction did not converge; ``findings`` holds what was found so far (the file must go)."""

    def __init__(self, message: str, findings: list[Finding]):
        super().__init__(message)
        self.findings = findings


class SecretScanner:
    """Kingfisher + detect-secrets + repotune's rules, configured once; use as a context manager.

    The one scanner set of every way in: the build (per file and per path), ``search --corpus FOLDER``,
    the gate's ``secrets`` suite and publish's last scan."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> SecretScanner:
        plugins = [{"name": cls.__name__} for cls in get_mapping_from_secret_type_to_class().values()]
        settings = self._stack.enter_context(transient_settings({"plugins_used": plugins}))
        settings.disable_filters(*_DISABLED_FILTERS)
        self.kingfisher = _kingfisher(os.getpid())
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def _kingfisher_spans(self, text: str) -> Iterator[tuple[str, int, int]]:
        data = text.encode("utf-8", "surrogatepass")
        ascii_only = len(data) == len(text)
        for finding in self.kingfisher.scan(data):
            if not finding.visible or _KINGFISHER_NOT_SECRETS.search(finding.rule_id):
                continue
            start, end = finding.location["start_offset"], finding.location["end_offset"]
            if not ascii_only:  # byte offsets -> character offsets
                start = len(data[:start].decode("utf-8", "ignore"))
                end = len(data[:end].decode("utf-8", "ignore"))
            yield _kingfisher_slug(finding.rule_id), start, end

    def _detect_secrets_spans(self, text: str, path: str) -> Iterator[tuple[str, int, int]]:
        lines = candidate_lines(text)
        if not lines:
            return
        line_of = dict(lines)
        starts = _line_starts(text)
        # The same function detect-secrets' scan_file runs on a file's lines; we call it on the
        # normalised text (and notebook cells) we actually keep, which has no file on disk.
        for secret in _process_line_based_plugins(lines=lines, filename=path):
            value, line = secret.secret_value, line_of[secret.line_number]
            if not value or secret.type == "Private Key":  # it flags a BEGIN line; key blocks are found whole
                continue
            for m in re.finditer(re.escape(value), line):
                start, end = whole_token(line, m.start(), m.end())
                yield secret_slug(secret.type), starts[secret.line_number - 1] + start, starts[secret.line_number - 1] + end

    def scan(self, text: str, path: str, allow: frozenset[str] | set[str] = frozenset(),
             judged: Counter | None = None) -> list[Hit]:
        """Every finding in ``text``, overlapping spans of the three scanners merged into one; a generic
        finding only where ``judge`` finds no reason it is not a secret (each reason counted in
        ``judged`` when given).

        ``allow``: exact values known not to be secrets (the run's own commit and content hashes,
        which detect-secrets sees as high-entropy hex strings)."""
        # a span that overlaps a placeholder is our own redaction seen again (`password: <SECRET:x>`
        # reads as the keyword SECRET assigned "x>"), not a secret: rescanning must converge
        ours = [m.span() for m in _PLACEHOLDER.finditer(text)]
        spans = []
        names = None
        sources = (self._kingfisher_spans(text), self._detect_secrets_spans(text, path), rule_spans(text, path))
        for rank, (kind, start, end) in ((rank, hit) for rank, found in enumerate(sources) for hit in found):
            value = text[start:end]
            if end <= start or value in allow or value.strip("\"'") in allow:
                continue
            if any(s < end and start < e for s, e in ours):
                continue
            if rank < 2 and _not_a_value(text, start, value, kind):  # repotune's rules judge their own values
                continue
            if kind in _JUDGED_TYPES:
                names = defined_names(text) if names is None else names
                reason = not_a_secret(text, start, end, kind, names)
                if reason:
                    if judged is not None:
                        judged[reason] += 1
                    continue
            spans.append((start, end, kind, rank))
        return merge_spans(text, spans)

    def redact(self, text: str, path: str, judged: Counter | None = None) -> tuple[str, list[Finding]]:
        """Replace every finding's span by ``<SECRET:type>`` (and, for a credential-shaped value, its
        other occurrences in the file); rescan until clean (a value may hide another). Line breaks
        inside a span (a key block) are kept, so line numbers stay true. ``judged``: the judge's
        reasons for what it let stand, counted on the first pass."""
        findings: list[Finding] = []
        for attempt in range(5):
            hits = self.scan(text, path, judged=judged if attempt == 0 else None)
            if not hits:
                return text, findings
            spans = [(h.start, h.end, h.type, 0) for h in hits]
            for hit in hits:
                if is_credential_shaped(hit.value):
                    spans += [(m.start(), m.end(), hit.type, 0) for m in re.finditer(re.escape(hit.value), text)]
            merged = merge_spans(text, spans)
            findings += [Finding(h.type, path, h.line) for h in merged]
            text = replaced_text(text, merged)
        raise RedactionError(f"{path}: secrets remain after 5 redaction passes; drop the file (secrets.policy: drop)", findings)

    def redact_path(self, path: str) -> tuple[str, list[Hit]]:
        """A path with any credential in a file or folder name redacted, and what was found."""
        hits = self.scan(path, path)
        return replaced_text(path, hits), hits


# a key that says its value is a content address, not a credential (`"dataset_hash": "<64 hex>"`)
_DIGEST_NAME = re.compile(r"(?i)(?:hash|sha\d*|sum|digest|checksum|fingerprint|revision|commit|etag|integrity|oid)[\"']?\s*[:=]\s*[\"']?$")


def _not_a_value(text: str, start: int, value: str, kind: str) -> bool:
    """A catalog or detect-secrets finding that is a placeholder by what it says; for their generic
    detectors (keywords, entropy), also prose (a value with spaces, a plain word) and content hashes
    named as such."""
    if is_placeholder(value):
        return True
    if kind not in _GENERIC_TYPES:
        return False
    before = text[text.rfind("\n", 0, start) + 1:start]
    return bool(re.search(r"\s", value.strip()) or is_wordlike(value.strip("\"'")) or _DIGEST_NAME.search(before))


def _line_starts(text: str) -> list[int]:
    """The offset of each line's first character."""
    return list(itertools.accumulate((len(line) + 1 for line in text.split("\n")[:-1]), initial=0))


def merge_spans(text: str, spans: list[tuple[int, int, str, int]]) -> list[Hit]:
    """Overlapping or touching spans (start, end, type, rank of its scanner) as one hit; its type is
    the most specific among them: a vendor's over a generic one, then the catalog's, detect-secrets',
    repotune's, then the longest."""
    hits: list[Hit] = []
    group: list[tuple[int, int, str, int]] = []

    def close() -> None:
        start, end = group[0][0], max(g[1] for g in group)
        kind = min(group, key=lambda g: (g[2] in _GENERIC_TYPES, g[3], g[0] - g[1]))[2]
        hits.append(Hit(kind, start, end, text.count("\n", 0, start) + 1, text[start:end]))

    for span in sorted(spans):
        if group and span[0] > max(g[1] for g in group):
            close()
            group = []
        group.append(span)
    if group:
        close()
    return hits


def replaced_text(text: str, hits: list[Hit]) -> str:
    """``text`` with each of ``hits`` (merged, in order) replaced by its typed placeholder."""
    parts, last = [], 0
    for h in hits:
        parts += [text[last:h.start], _placeholder_lines(text[h.start:h.end], f"<SECRET:{h.type}>")]
        last = h.end
    return "".join(parts) + text[last:]


def _placeholder_lines(value: str, placeholder: str) -> str:
    """A span's replacement: one placeholder per line it covers, each line's indentation kept."""
    lines = value.split("\n")
    return "\n".join([placeholder] + [line[:len(line) - len(line.lstrip())] + placeholder if line.strip() else line
                                       for line in lines[1:]])


def rules_markdown() -> str:
    """What the scanners catch, from their own rule lists: the docs' table (docs/secrets.md, generated by docs/hooks.py)."""
    kingfisher = kingfisher_rules()
    families = sorted({re.sub(r"-(?:api|access|secret|personal|auth|oauth|client|service|bot|app|user|org|admin)[\w\-.]*$|[.\d]+$", "",
                              re.sub(r"^(?:betterleaks\.|veles\.secrets/)", "", rule["id"])) for rule in kingfisher})
    plugins = sorted(cls.__name__ for cls in get_mapping_from_secret_type_to_class().values())
    rows = ["| repotune rule | what it finds |", "|---|---|"]
    rows += [f"| `{rule.id}` | {rule.what} |" for rule in RULES]
    # the long lists wrapped, so the docs keep lines a build does not drop as minified (> 1000 characters)
    rows += ["", *textwrap.wrap(f"**detect-secrets {_version('detect-secrets')}**, {len(plugins)} plugins: " + ", ".join(plugins)
                                + " (its filters that drop values by shape or by an inline allowlist are off).", 100)]
    rows += ["", *textwrap.wrap(f"**Kingfisher {_version('kingfisher-secret-scanner')}**, {len(kingfisher)} rules "
                                f"({len(families)} vendors and formats): " + ", ".join(families) + ".", 100)]
    return "\n".join(rows)


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)
