"""secrets: keep sensitive files out, find every secret with detect-secrets, redact or drop.

Detection is detect-secrets' own: its default plugins and filters plus the plugins in
``secret_plugins.py`` (formats its defaults miss), configured once per stage with
``transient_settings``. Whole private-key blocks are redacted by a text-level pass, because
detect-secrets flags only the ``BEGIN`` line of a key.

The report lists type, path and line of each finding, never the value.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import fnmatch
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.core.scan import _process_line_based_plugins
from detect_secrets.settings import transient_settings

from . import secret_plugins
from .config import SecretsConfig
from .records import SourceFile
from .stage import StageStats

# Files that hold credentials by their nature: never read, never in the corpus, whatever they contain.
SENSITIVE_FILE_PATTERNS = (
    ".env", ".env.*", "*.env",  # dotenv files
    "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore",  # keys and certificate stores
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*",  # SSH private keys
    ".netrc", ".pgpass", ".npmrc", ".pypirc", ".git-credentials",  # tool credential stores
    "credentials", "credentials.*", "*credentials.json", "service-account*.json",  # cloud credentials
    "*.tfstate", "*.tfvars",  # terraform state holds provider secrets
)

_PRIVATE_KEY_BLOCK = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
    re.DOTALL,
)
# Cheap pre-filter: detect-secrets scans ~0.2 MB/s, so only lines that could hold a secret *value*
# go to it: a long token-like run with a digit (keys, tokens, high-entropy strings), a URL
# with credentials, a private-key header, an IPv4 address, a secret-ish name assigned a literal, or
# credentials on a command line (curl -u / --user, httpie -a / --auth, --password and kin).
# Each pattern runs once over a whole file, none can match across a line break, so a line is a
# candidate exactly when a pattern matches inside it; the names are matched on the text with ASCII
# letters lowered (the four other letters that re's IGNORECASE folds to ASCII included), which is
# the same match as a case-insensitive pattern at a tenth of the cost.
_CANDIDATE_PATTERNS = tuple(re.compile(p) for p in (
    r"(?<![\w+/=\-])(?=[\w+/=\-]{16})[A-Za-z+/=_\-]*\d",
    r"://[^\s]*@",
    r"-----BEGIN",
    r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b",
    r"(?<![\w\-])-(?:[uUa]|-[\w\-]*(?:user|passw|auth))",
))
_CANDIDATE_NAME = re.compile(r"(?:key|secret|token|passw|pwd|auth|credential|bearer)[^=:\n]{0,40}[=:>][^\S\n]*[\"'\w]")
_FOLD = str.maketrans({**{chr(c): chr(c + 32) for c in range(ord("A"), ord("Z") + 1)},
                       "\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})


def candidate_lines(text: str) -> list[tuple[int, str]]:
    """(1-based line number, line) of each line that could hold a secret value, in order."""
    lines = text.split("\n")
    starts = list(itertools.accumulate((len(line) + 1 for line in lines[:-1]), initial=0))
    found: set[int] = set()
    for pattern, haystack in [*((p, text) for p in _CANDIDATE_PATTERNS), (_CANDIDATE_NAME, text.translate(_FOLD))]:
        found.update(bisect.bisect_right(starts, m.start()) for m in pattern.finditer(haystack))
    return [(n, lines[n - 1]) for n in sorted(found)]


# detect-secrets heuristics that suit reviewing a diff but not publishing text: each would let a real
# value through into a public dataset.
_DISABLED_FILTERS = (
    # skips every line shaped `x = f(...)`, so `client = OpenAI(api_key="sk-...")` or
    # `conn = connect("postgres://user:pw@host")` would pass unredacted
    "detect_secrets.filters.heuristic.is_indirect_reference",
    # skips any path containing "swagger"; a key in docs/swagger.yaml is still a key
    "detect_secrets.filters.heuristic.is_swagger_file",
)
_PLACEHOLDER = re.compile(r"<SECRET:[a-z0-9_]+>")
# detectors that flag anything secret-shaped; a specific detector's type wins when both flag one value
_GENERIC_TYPES = {"base64_high_entropy_string", "hex_high_entropy_string", "secret_keyword", "secret_assignment"}


_ID_KEY = re.compile(r"(hash|revision|sha|commit|fingerprint)$", re.I)


def identifiers(node) -> set[str]:
    """Hex values of identifier keys (dataset_hash, dataset_revision, commit, ...) in JSON that the
    pipeline or its libraries wrote (manifest, mteb results): content addresses that detect-secrets
    calls high-entropy strings, and that are not secrets."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and _ID_KEY.search(key) and re.fullmatch(r"[0-9a-f]{7,64}", value):
                found.add(value)
            else:
                found |= identifiers(value)
    elif isinstance(node, list):
        for item in node:
            found |= identifiers(item)
    return found


def known_identifiers(manifest: dict, model_hash: str | None, folders) -> set[str]:
    """The exact values a scan of a run (the gate) or of its upload folders (publish) may allow:
    the manifest's identifiers, the model hash, and the identifiers in every JSON / JSONL file below
    ``folders``. One rule for both, so publish and the gate agree on what is a secret."""
    import json

    allow = identifiers(manifest) | {model_hash or ""}
    for folder in folders:
        for path in folder.rglob("*.json*"):
            text = path.read_text(errors="replace")
            for line in text.splitlines() if path.suffix == ".jsonl" else [text]:
                with contextlib.suppress(ValueError):
                    allow |= identifiers(json.loads(line))
    return allow - {""}


TEXT_SUFFIXES = {".md", ".json", ".jsonl", ".yaml", ".yml", ".txt", ".csv", ".py", ".cfg", ".toml"}
MAX_TEXT_BYTES = 20_000_000  # bytes: a larger file without a text suffix is taken as binary (weights, archives)


def is_text_file(path) -> bool:
    """Whether a file of a run is text to scan: a text suffix, or small, NUL-free and valid UTF-8.
    The gate and publish scan the same files by this one rule."""
    if path.suffix in TEXT_SUFFIXES:
        return True
    if path.stat().st_size > MAX_TEXT_BYTES:
        return False
    data = path.read_bytes()
    if b"\0" in data[:8192]:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def sensitive_file_reason(path: str) -> str | None:
    name = PurePosixPath(path).name.lower()
    if any(fnmatch.fnmatch(name, pattern) for pattern in SENSITIVE_FILE_PATTERNS):
        return "sensitive_file"
    return None


def secret_slug(secret_type: str) -> str:
    """'AWS Access Key' -> 'aws_access_key': the typed placeholder and report name."""
    return re.sub(r"[^a-z0-9]+", "_", secret_type.lower()).strip("_")


@dataclass(frozen=True)
class Finding:
    type: str
    path: str
    line: int


def _plugins_config() -> dict:
    plugins = [{"name": cls.__name__} for cls in get_mapping_from_secret_type_to_class().values()]
    custom = [
        {"name": name, "path": f"file://{secret_plugins.__file__}"}
        for name, obj in vars(secret_plugins).items()
        if isinstance(obj, type) and obj.__module__ == secret_plugins.__name__ and not name.startswith("_")
    ]
    return {"plugins_used": plugins + custom}


class RedactionError(RuntimeError):
    """Redaction did not converge; ``findings`` holds what was found so far (the file must go)."""

    def __init__(self, message: str, findings: list[Finding]):
        super().__init__(message)
        self.findings = findings


class SecretScanner:
    """detect-secrets configured once (defaults + our plugins); use as a context manager."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> "SecretScanner":
        settings = self._stack.enter_context(transient_settings(_plugins_config()))
        settings.disable_filters(*_DISABLED_FILTERS)
        # detect-secrets caches its type->class map; rebuild it so our file:// plugins are in it
        get_mapping_from_secret_type_to_class.cache_clear()
        self._stack.callback(get_mapping_from_secret_type_to_class.cache_clear)
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def scan(self, text: str, path: str, allow: frozenset[str] | set[str] = frozenset()) -> list[tuple[str, int, str]]:
        """(slug, line, value) for each finding in ``text``; line numbers are 1-based.

        ``allow``: exact values known not to be secrets (the run's own commit and content hashes,
        which detect-secrets sees as high-entropy hex strings)."""
        found = []
        for match in _PRIVATE_KEY_BLOCK.finditer(text):
            found.append(("private_key", text.count("\n", 0, match.start()) + 1, match.group(0)))
        blocks = [value for _, _, value in found]
        # a value that overlaps a placeholder is our own redaction seen again (`password: <SECRET:x>`
        # reads as the keyword SECRET assigned "x>"), not a secret: rescanning must converge
        masked = _PLACEHOLDER.sub("\0", text)
        lines = candidate_lines(text)
        if lines:
            # The same function detect-secrets' scan_file runs on a file's lines; we call it on the
            # normalised text (and notebook cells) we actually keep, which has no file on disk.
            secrets = [s for s in _process_line_based_plugins(lines=lines, filename=path)
                       if s.secret_value and s.secret_value in masked and s.secret_value not in allow
                       and not any(s.secret_value in block for block in blocks)]  # a key block's BEGIN line
            # several detectors may flag one value (an hf_ token is also high-entropy): the specific
            # type names the placeholder and the report, the generic ones only catch the rest
            secrets.sort(key=lambda s: secret_slug(s.type) in _GENERIC_TYPES)
            type_of: dict[str, str] = {}
            for secret in secrets:
                type_of.setdefault(secret.secret_value, secret_slug(secret.type))
            seen: set[tuple[str, int]] = set()  # one finding per value and line: the report lists each place
            for secret in sorted(secrets, key=lambda s: s.line_number):
                if (secret.secret_value, secret.line_number) not in seen:
                    seen.add((secret.secret_value, secret.line_number))
                    found.append((type_of[secret.secret_value], secret.line_number, secret.secret_value))
        return found

    def redact(self, text: str, path: str) -> tuple[str, list[Finding]]:
        """Replace every finding by ``<SECRET:type>``; rescan until clean (a value may hide another)."""
        findings: list[Finding] = []
        for _ in range(5):
            found = self.scan(text, path)
            if not found:
                return text, findings
            lines = text.split("\n")
            for slug, line_no, value in sorted(found, key=lambda f: -len(f[2])):
                findings.append(Finding(slug, path, line_no))
                placeholder = f"<SECRET:{slug}>"
                if "\n" in value:  # a key block: one placeholder per line keeps line numbers true
                    text = text.replace(value, "\n".join([placeholder] * (value.count("\n") + 1)))
                    lines = text.split("\n")
                elif len(value) >= 8:
                    # long values are replaced wherever they occur, not only on the line they were found
                    text = text.replace(value, placeholder)
                    lines = text.split("\n")
                else:
                    lines[line_no - 1] = lines[line_no - 1].replace(value, placeholder)
                    text = "\n".join(lines)
        raise RedactionError(f"{path}: secrets remain after 5 redaction passes; drop the file (secrets.policy: drop)", findings)


def redact_file(scanner: SecretScanner, source: SourceFile, config: SecretsConfig, stats: StageStats,
                report: list[Finding]) -> SourceFile | None:
    """One file: redacted (or None when the policy or a sensitive name drops it); findings go to ``report``."""
    if sensitive_file_reason(source.path):
        stats.drop("sensitive_file", source.path)
        return None
    try:
        text, findings = scanner.redact(source.text, source.path)
    except RedactionError as err:  # never let a half-redacted file through, never crash the build
        report.extend(err.findings)
        stats["files_with_secrets"] += 1
        stats.drop("secret_not_redactable", source.path)
        return None
    if findings:
        report.extend(findings)
        stats["files_with_secrets"] += 1
        for finding in findings:
            stats[f"finding_{finding.type}"] += 1
        if config.policy == "drop":
            stats.drop("contains_secret", source.path)
            return None
        source = dataclasses.replace(source, text=text)
    stats["kept"] += 1
    return source


def redact_secrets(
    files: Iterable[SourceFile], config: SecretsConfig, stats: StageStats, report: list[Finding]
) -> Iterator[SourceFile]:
    """Stage: scan each file; redact findings (or drop the file, by policy); extend ``report``."""
    with SecretScanner() as scanner:
        for source in files:
            kept = redact_file(scanner, source, config, stats, report)
            if kept is not None:
                yield kept
