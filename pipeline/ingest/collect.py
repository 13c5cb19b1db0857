"""collect: list the repository's files and classify them as code or docs, every text file.

Inside git, ``git ls-files`` lists tracked and untracked-but-not-ignored files, so .gitignore holds;
outside git, a plain walk. Symlinks are never followed; notebooks contribute their Markdown and
code cells (never their outputs) as two records, ``nb.ipynb#markdown`` and ``nb.ipynb#python`` (or the
kernel's language: ``nb.ipynb#javascript``).
Text is read later, by clean, so a listing costs no I/O beyond ``stat``, but for a file whose name
identify does not know: its first bytes (a shebang, binary or text) decide, and binary is dropped.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath

from identify import identify

from ..config import CollectConfig
from ..errors import RepotuneError
from ..records import SourceFile
from ..secrets import sensitive_file_reason
from ..stage import StageStats

# A file's kind and language come from identify's tags (pre-commit's file classifier: ~400 extensions, file names
# and shebangs), mapped to repotune's language names where they differ (syntax.py's grammars read these)
_LANGUAGE_NAMES = {"ts": "typescript", "tsx": "typescript", "jsx": "javascript", "c++": "cpp", "c#": "csharp",
                   "bash": "shell", "zsh": "shell", "makefile": "make", "plain-text": "text", "pyi": "python",
                   "mts": "typescript", "cts": "typescript"}
# the languages chosen first when a file carries several tags (a C header is tagged c and c++; a POM, pom and xml)
_KNOWN = ("python", "javascript", "typescript", "go", "rust", "java", "kotlin", "scala", "c", "cpp", "csharp", "ruby", "php",
          "swift", "shell", "sql", "r", "julia", "lua", "yaml", "toml", "ini", "json", "xml", "html", "markdown", "rst", "text",
          "make", "dockerfile")
_DOC_LANGUAGES = {"markdown", "rst", "asciidoc", "text"}
_NOT_LANGUAGES = identify.TYPE_TAGS | identify.MODE_TAGS | identify.ENCODING_TAGS | {"header", "image", "audio", "video",
                                                                                     "archive", "font", "jenkins"}
# a notebook kernel's language (metadata.kernelspec.language / language_info.name) -> repotune's name
_KERNEL_LANGUAGES = {"node": "javascript", "nodejs": "javascript", "js": "javascript", "ts": "typescript", "c++": "cpp",
                     "c++11": "cpp", "c++14": "cpp", "c++17": "cpp", "c++20": "cpp", "c#": "csharp", "bash": "shell", "sh": "shell",
                     "golang": "go", "python3": "python"}


class RepoError(RepotuneError, ValueError):
    """The repository cannot be read; the message says why and what to do."""


def classify(path: str, tags: set[str] | frozenset[str] | None = None) -> tuple[str, str]:
    """(kind, language) from a file's name (or from ``tags``, identify's tags of its content): kind is code, docs,
    notebook, or other for a name identify does not know as text (its content decides: see ``collect``)."""
    suffix = PurePosixPath(path).suffix.lower().lstrip(".")
    tags = identify.tags_from_filename(PurePosixPath(path).name) if tags is None else tags
    if not tags and suffix in _LANGUAGE_NAMES:  # a suffix identify does not know, but repotune does (.mts)
        tags = {identify.TEXT, suffix}
    if "jupyter" in tags:
        return "notebook", "python"
    if identify.TEXT not in tags:
        return "other", "unknown"
    names = sorted({_LANGUAGE_NAMES.get(tag, tag) for tag in tags - _NOT_LANGUAGES})
    language = next((name for name in _KNOWN if name in names), names[0] if names else "")
    if not language:  # text of no language identify knows: named by its suffix (conf, log, jsonl), else plain text
        language = suffix or "text"
    return ("docs" if language in _DOC_LANGUAGES else "code"), language


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, check=True, timeout=120)
    except (subprocess.CalledProcessError, FileNotFoundError, subprocess.TimeoutExpired):
        return None
    return out.stdout.decode("utf-8", "surrogateescape")


def remote_url(root: Path) -> str | None:
    """The repository's ``origin`` as the cards name the source (userinfo removed: a token in a clone URL never
    travels), or None (no git, no remote: the cards then name the folder)."""
    url = _git(root, "remote", "get-url", "origin") if in_work_tree(root) else None
    return re.sub(r"^([a-z][\w+.-]*://)[^/@\s]*@", r"\1", url.strip()) if url and url.strip() else None


def in_work_tree(root: Path) -> bool:
    """Whether git lists ``root``'s files (and its history tells of them): a repository's root, or a folder
    inside a checkout that the checkout does not ignore (run from a subfolder, `git ls-files` lists that
    folder, relative to it). A folder the checkout ignores (a virtual environment's site-packages, say)
    was named on purpose, and is walked."""
    top = _git(root, "rev-parse", "--show-toplevel")
    return top is not None and (Path(top.strip()).resolve() == root or _git(root, "check-ignore", "-q", ".") is None)


def _list_paths(root: Path) -> tuple[list[str], str | None]:
    """Relative POSIX paths, sorted, and HEAD's commit (None outside git or before the first commit)."""
    if in_work_tree(root):
        listing = _git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
        if listing is not None:
            commit = _git(root, "rev-parse", "--verify", "-q", "HEAD")
            return sorted(set(filter(None, listing.split("\0")))), (commit.strip() or None) if commit else None
    paths = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d != ".git")
        rel = Path(dirpath).relative_to(root)
        paths += [(rel / f).as_posix() for f in filenames]
        # symlinked directories are listed (and dropped below), never entered
        paths += [(rel / d).as_posix() for d in dirnames if (Path(dirpath) / d).is_symlink()]
    return sorted(paths), None


def notebook_cells(raw: str) -> tuple[str, str]:
    """(markdown, code) text of a notebook's cells, outputs ignored."""
    markdown, code, _ = notebook_parts(raw)
    return markdown, code


def notebook_parts(raw: str) -> tuple[str, str, str]:
    """(markdown, code, language) of a notebook: its code cells are in its kernel's language (Python
    unless the metadata says otherwise), so a JavaScript or Go notebook's code takes that language's path."""
    notebook = json.loads(raw)
    meta = notebook.get("metadata") or {}
    kernel = (meta.get("kernelspec") or {}).get("language") or (meta.get("language_info") or {}).get("name") or "python"
    language = str(kernel).strip().lower()
    language = _KERNEL_LANGUAGES.get(language, language) if re.fullmatch(r"[\w+#.-]{1,20}", language) else "python"
    cells = notebook.get("cells", [])
    parts: dict[str, list[str]] = {"markdown": [], "code": []}
    for cell in cells:
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        if cell.get("cell_type") in parts and text.strip():
            parts[cell["cell_type"]].append(text.rstrip("\n"))
    return "\n\n".join(parts["markdown"]), "\n\n".join(parts["code"]), language


def collect(repo: str | Path, config: CollectConfig, stats: StageStats, own: Iterable[str | Path] = ()) -> Iterator[SourceFile]:
    """Stage: yield one SourceFile (text not yet read, except notebooks) per usable file.

    ``own``: paths of the run's own (its question set, its output folder): where they lie inside the
    repository they are left out, counted as ``excluded`` (a run never trains on what judges it, nor on
    an earlier run's output). The path is checked now, not at the first ``next()``, so a bad path fails
    before a caller creates its run directory or loads a tokenizer."""
    root = Path(repo).expanduser()
    if not root.exists():
        raise RepoError(f"repository path {str(repo)!r} does not exist: give the path of a checked-out repository")
    if not root.is_dir():
        raise RepoError(f"repository path {str(repo)!r} is a file, not a directory: give the repository's root folder")
    root = root.resolve()
    inside = [Path(p).expanduser().resolve() for p in own if p]
    inside = [p.relative_to(root).as_posix() for p in inside if p != root and p.is_relative_to(root)]
    return _collect(root, config, stats, [*inside, *(f"{p}/**" for p in inside)])


def _collect(root: Path, config: CollectConfig, stats: StageStats, own: list[str]) -> Iterator[SourceFile]:
    paths, commit = _list_paths(root)
    excluded = [*config.exclude, *own]
    for rel in paths:
        path = root / rel
        if any(fnmatch.fnmatch(rel, pattern) for pattern in excluded):
            stats.drop("excluded", rel)
            continue
        if config.include and not any(fnmatch.fnmatch(rel, pattern) for pattern in config.include):
            stats.drop("not_included", rel)
            continue
        if path.is_symlink():
            try:
                target = path.resolve()
            except (RuntimeError, OSError):  # Python < 3.13 raises RuntimeError on a loop (a -> b -> a)
                stats.drop("symlink_loop", rel)
                continue
            inside = target.is_relative_to(root) and target.exists()
            stats.drop("symlink" if inside else "symlink_outside_repo_or_broken", rel)
            continue
        if path.is_dir():  # a submodule's gitlink, or a nested repository
            stats.drop("submodule", rel)
            continue
        if not path.is_file():
            stats.drop("missing_or_special", rel)
            continue
        if sensitive_file_reason(rel):  # never read, not even by clean
            stats.drop("sensitive_file", rel)
            continue
        kind, language = classify(rel)
        if kind == "other":  # a name identify does not know as text: its content decides (a shebang, the bytes)
            kind, language = classify(rel, identify.tags_from_path(str(path)))
            if kind == "other":
                stats.drop("binary", rel)
                continue
        size = path.stat().st_size
        if kind == "notebook":
            if size > config.max_file_bytes:
                stats.drop("too_large", rel)
                continue
            try:
                markdown, code, language = notebook_parts(path.read_text(encoding="utf-8", errors="replace"))
            except (ValueError, AttributeError, OSError):
                stats.drop("invalid_notebook", rel)
                continue
            stats["notebooks"] += 1
            for cell_kind, lang, text in (("docs", "markdown", markdown), ("code", language, code)):
                if text:
                    stats["kept"] += 1
                    yield SourceFile(f"{rel}#{lang}", cell_kind, lang, text=text, size=len(text.encode()), commit=commit)
            continue
        stats["kept"] += 1
        yield SourceFile(rel, kind, language, size=size, commit=commit, abs_path=str(path))
