"""redaction: the secrets stage of the build, per file: sensitive files out, findings redacted (or the file
dropped, by policy), each counted; and the chunks scanned again (a chunk cut inside a long token can show a
shape the whole token did not)."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Iterable, Iterator

from ..config import SecretsConfig
from ..records import SourceFile
from ..stage import StageStats
from .files import sensitive_file_reason
from .scanner import Finding, RedactionError, SecretScanner, merge_spans, replaced_text, whole_token


def redact_file(scanner: SecretScanner, source: SourceFile, config: SecretsConfig, stats: StageStats,
                report: list[Finding]) -> SourceFile | None:
    """One file: redacted (or None when the policy or a sensitive name drops it); findings go to ``report``."""
    if sensitive_file_reason(source.path):
        stats.drop("sensitive_file", source.path)
        return None
    safe_path, hits = scanner.redact_path(source.path)
    if hits:  # a credential in a file or folder name: the file goes, and the report names it redacted
        report.extend(Finding(h.type, safe_path, 0) for h in hits)
        stats["files_with_secrets"] += 1
        stats.drop("secret_in_path", safe_path)  # recorded redacted, as the report names it
        return None
    judged: Counter = Counter()
    try:
        text, findings = scanner.redact(source.text, source.path, judged)
    except RedactionError as err:  # never let a half-redacted file through, never crash the build
        report.extend(err.findings)
        stats["files_with_secrets"] += 1
        stats.drop("secret_not_redactable", source.path)
        return None
    for reason, count in judged.items():
        stats[f"judged_{reason}"] += count
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


def redact_pieces(scanner: SecretScanner, source: SourceFile, pieces: list, config: SecretsConfig, stats: StageStats,
                  report: list[Finding]) -> SourceFile | None:
    """The file's chunks as the gate reads them (``pieces``: each a ``.text`` of ``source``, with its
    ``.start_line``), scanned again: a chunk cut inside a long token can show a shape the whole token did
    not (the random-looking tail of a cookie). ``source`` itself when no piece shows a finding; else the
    file with the whole token around each value found redacted wherever the value stands (chunk it again),
    or None where the policy drops the file or a value is not in its text. Findings go to ``report`` (this
    file's, after ``redact_file``'s)."""
    hits = [(piece, hit) for piece in pieces for hit in scanner.scan(piece.text, source.path)]
    if not hits:
        return source
    if not report:
        stats["files_with_secrets"] += 1
    for piece, hit in hits:
        report.append(Finding(hit.type, source.path, piece.start_line + hit.line - 1))
        stats[f"finding_{hit.type}"] += 1
    stats["findings_in_chunks"] += len(hits)
    text = source.text
    if config.policy == "drop" or any(hit.value not in text for _, hit in hits):  # never a piece the file's redaction cannot reach
        stats["kept"] -= 1
        stats.drop("contains_secret" if config.policy == "drop" else "secret_not_redactable", source.path)
        return None
    spans = [(*whole_token(text, m.start(), m.end()), hit.type, 0) for _, hit in hits
             for m in re.finditer(re.escape(hit.value), text)]
    return dataclasses.replace(source, text=replaced_text(text, merge_spans(text, spans)))


def redact_secrets(
    files: Iterable[SourceFile], config: SecretsConfig, stats: StageStats, report: list[Finding]
) -> Iterator[SourceFile]:
    """Each file by ``redact_file``, the function ``workers.ingest`` runs per file, in one process: redacted
    (or dropped, by policy); findings extend ``report``."""
    with SecretScanner() as scanner:
        for source in files:
            kept = redact_file(scanner, source, config, stats, report)
            if kept is not None:
                yield kept
