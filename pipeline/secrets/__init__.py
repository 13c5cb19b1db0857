"""secrets: what keeps a credential out of every dataset and model repotune writes.

One public API for every way in (the build's ingest, history, ``repotune search --corpus``, the gate's
``secrets`` suite, publish's last scan):

- ``files``: files that never enter the corpus by their name (``sensitive_file_reason``), and a path's kind.
- ``catalog``: repotune's rules (generic forms by category, vendor tokens), data beside the engine that runs them.
- ``scanner``: candidates from Kingfisher, detect-secrets and the catalog, each generic one judged, overlapping
  spans merged into one (never a placeholder inside a placeholder), exact spans redacted.
- ``judge``: why a generic finding is not a secret (a name the file defines, unnamed hex, a stand-in once decoded).
- ``values``: what a name or a value says (secret-named, a stand-in, credential-shaped, words or random).
- ``redaction``: the build's stage, per file and per chunk, counted.
"""

from .files import sensitive_file_reason
from .redaction import redact_file, redact_pieces, redact_secrets
from .scanner import Finding, Hit, RedactionError, SecretScanner, candidate_lines, rules_markdown, secret_slug

__all__ = ["Finding", "Hit", "RedactionError", "SecretScanner", "candidate_lines", "redact_file", "redact_pieces",
           "redact_secrets", "rules_markdown", "secret_slug", "sensitive_file_reason"]
