"""files: the file rules of the secret scan: which files never enter the corpus by their name, and what kind
of text a path holds (a bare word after ``=`` is a reference in code, a value in config)."""

from __future__ import annotations

import fnmatch
from pathlib import PurePosixPath

# Files that hold credentials by their nature: never read, never in the corpus, whatever they contain.
SENSITIVE_FILE_PATTERNS = (
    ".env", ".env.*", "*.env",  # dotenv files
    "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore",  # keys and certificate stores
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*",  # SSH private keys
    ".netrc", ".pgpass", ".npmrc", ".pypirc", ".git-credentials",  # tool credential stores
    "credentials", "credentials.*", "*credentials.json", "service-account*.json",  # cloud credentials
    "*.tfstate", "*.tfvars",  # terraform state holds provider secrets
)


def sensitive_file_reason(path: str) -> str | None:
    """"sensitive_file" for a name that holds credentials by its nature (``SENSITIVE_FILE_PATTERNS``), else None."""
    name = PurePosixPath(path).name.lower()
    if any(fnmatch.fnmatch(name, pattern) for pattern in SENSITIVE_FILE_PATTERNS):
        return "sensitive_file"
    return None


# in code, a bare word after `=` is a reference to a variable; in config it is the literal value
CODE_SUFFIXES = frozenset({
    ".py", ".pyi", ".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".go", ".java", ".kt", ".kts", ".scala", ".rs", ".rb",
    ".php", ".cs", ".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".swift", ".m", ".mm", ".dart", ".lua", ".r",
    ".jl", ".ex", ".exs", ".clj", ".groovy", ".vue", ".svelte", ".fs", ".vb", ".pl", ".pm",
})
DOC_SUFFIXES = frozenset({".md", ".markdown", ".rst", ".txt", ".adoc", ".html", ".htm", ".tex", ".org"})


def file_kind(path: str) -> str:
    """'code', 'docs' or 'config' (everything else: YAML, JSON, INI, shell, Dockerfile, XML, SQL, ...)."""
    name = path.split("#", 1)[0]
    suffix = PurePosixPath(name).suffix.lower()
    if "#" in path and path.rsplit("#", 1)[1] not in ("markdown", "raw"):
        return "code"  # a notebook's code cells
    if suffix in CODE_SUFFIXES:
        return "code"
    if suffix in DOC_SUFFIXES or ("#" in path):
        return "docs"
    return "config"
