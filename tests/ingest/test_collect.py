"""collect: what gets listed, how it is classified, and what is dropped (and counted) before any read."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from support import git_init, write_files

from pipeline.config import CollectConfig
from pipeline.ingest.collect import RepoError, classify, collect, notebook_cells
from pipeline.stage import StageStats


def run_collect(root: Path, **config) -> tuple[dict[str, object], StageStats]:
    stats = StageStats("collect")
    files = {f.path: f for f in collect(root, CollectConfig(**config), stats)}
    return files, stats


# --- listing ---------------------------------------------------------------------------------------

def test_git_listing_honours_gitignore_and_lists_untracked_files(tmp_path):
    root = write_files(tmp_path / "repo", {
        ".gitignore": "ignored.py\nbuild/\n*.log.md\n",
        "kept.py": "x = 1\n",
        "ignored.py": "y = 2\n",
        "build/gen.py": "z = 3\n",
        "notes.log.md": "# log\n",
        "docs/guide.md": "# Guide\n",
    })
    git_init(root)
    write_files(root, {"new_untracked.py": "w = 4\n", "also_ignored.py": "v = 5\n"})
    (root / ".gitignore").write_text("ignored.py\nbuild/\n*.log.md\nalso_ignored.py\n")
    files, stats = run_collect(root)
    assert set(files) == {"kept.py", "docs/guide.md", "new_untracked.py", ".gitignore"}  # every text file
    assert files["kept.py"].commit and len(files["kept.py"].commit) == 40
    assert stats["kept"] == 4


def test_plain_walk_outside_git_lists_everything_and_has_no_commit(tmp_path):
    root = write_files(tmp_path / "plain", {
        ".gitignore": "ignored.py\n",  # not a git repository: nothing to honour it
        "a.py": "x = 1\n",
        "ignored.py": "y = 2\n",
        "deep/er/b.md": "# B\n",
    })
    files, stats = run_collect(root)
    assert set(files) == {"a.py", "ignored.py", "deep/er/b.md", ".gitignore"}
    assert all(f.commit is None for f in files.values())
    assert files["a.py"].abs_path == str((root / "a.py").resolve())
    assert files["a.py"].size == len("x = 1\n")
    assert files["a.py"].text == ""  # read later, by clean


def test_git_repository_without_a_commit(tmp_path):
    root = write_files(tmp_path / "repo", {"a.py": "x = 1\n", "README.md": "# R\n"})
    git_init(root, commit=False)
    files, _ = run_collect(root)
    assert set(files) == {"a.py", "README.md"}
    assert all(f.commit is None for f in files.values())


def test_include_and_exclude_patterns_are_counted(tmp_path):
    root = write_files(tmp_path / "r", {"src/a.py": "a = 1\n", "runs/x/b.py": "b = 1\n", "docs/c.md": "# C\n"})
    files, stats = run_collect(root, include=["src/*", "runs/*"], exclude=["runs/**"])
    assert set(files) == {"src/a.py"}
    assert stats["dropped_excluded"] == 1 and stats["dropped_not_included"] == 1


# --- classification --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "path, expected",
    [
        ("pkg/mod.py", ("code", "python")),
        ("web/app.ts", ("code", "typescript")),
        ("Makefile", ("code", "make")),
        ("deploy/Dockerfile", ("code", "dockerfile")),
        ("config/app.yaml", ("code", "yaml")),
        ("README.md", ("docs", "markdown")),
        ("docs/index.rst", ("docs", "rst")),
        ("NOTES.txt", ("docs", "text")),
        ("nb/explore.ipynb", ("notebook", "python")),
        ("logo.png", ("other", "unknown")),
        ("data.bin", ("other", "unknown")),
        ("UPPER.PY", ("code", "python")),
        # every text file, in the languages identify knows; what it does not know, by suffix
        ("infra/main.tf", ("code", "terraform")),
        ("web/App.vue", ("code", "vue")),
        ("ci/Jenkinsfile", ("code", "groovy")),
        ("include/api.h", ("code", "c")),
        ("web/app.mts", ("code", "typescript")),
        ("etc/app.conf", ("code", "conf")),
        ("LICENSE", ("docs", "text")),
    ],
)
def test_classify(path, expected):
    assert classify(path) == expected


def test_binary_files_are_dropped_and_text_of_any_name_is_read(tmp_path):
    root = write_files(tmp_path / "r", {"a.py": "x = 1\n", "logo.png": b"\x89PNG\r\n", "blob.bin": b"\x00\x01",
                                        "bin/deploy": "#!/usr/bin/env bash\necho hi\n", "CHANGES": "1.0: first\n",
                                        "data.custom": "plain words\n"})
    (root / "bin/deploy").chmod(0o755)
    files, stats = run_collect(root)
    assert set(files) == {"a.py", "bin/deploy", "CHANGES", "data.custom"}
    assert (files["bin/deploy"].kind, files["bin/deploy"].language) == ("code", "shell")  # by its shebang
    assert (files["CHANGES"].kind, files["CHANGES"].language) == ("docs", "text")
    assert files["data.custom"].language == "custom"
    assert stats["dropped_binary"] == 2


# --- notebooks -------------------------------------------------------------------------------------

NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Exploring the parser\n", "\n", "We load a file and look at it."]},
        {"cell_type": "code", "metadata": {}, "execution_count": 1, "source": "import parser\nresult = parser.load('x')",
         "outputs": [{"output_type": "stream", "name": "stdout", "text": ["PLANTED_OUTPUT_STRING_42\n"]},
                     {"output_type": "execute_result", "data": {"text/plain": ["'PLANTED_RESULT_VALUE'"]}, "metadata": {}, "execution_count": 1}]},
        {"cell_type": "raw", "metadata": {}, "source": "RAW_CELL_TEXT"},
        {"cell_type": "code", "metadata": {}, "source": [], "outputs": []},
        {"cell_type": "markdown", "metadata": {}, "source": "## Second heading"},
    ],
    "metadata": {"kernelspec": {"name": "python3"}},
    "nbformat": 4,
    "nbformat_minor": 5,
}


def test_notebook_cells_give_markdown_and_code_never_outputs():
    markdown, code = notebook_cells(json.dumps(NOTEBOOK))
    assert markdown == "# Exploring the parser\n\nWe load a file and look at it.\n\n## Second heading"
    assert code == "import parser\nresult = parser.load('x')"
    for text in (markdown, code):
        assert "PLANTED_OUTPUT_STRING_42" not in text and "PLANTED_RESULT_VALUE" not in text
        assert "RAW_CELL_TEXT" not in text


def test_collect_turns_a_notebook_into_a_docs_and_a_code_record(tmp_path):
    root = write_files(tmp_path / "r", {"nb/explore.ipynb": json.dumps(NOTEBOOK)})
    files, stats = run_collect(root)
    assert set(files) == {"nb/explore.ipynb#markdown", "nb/explore.ipynb#python"}
    docs, code = files["nb/explore.ipynb#markdown"], files["nb/explore.ipynb#python"]
    assert (docs.kind, docs.language) == ("docs", "markdown")
    assert (code.kind, code.language) == ("code", "python")
    assert docs.abs_path == "" and code.abs_path == ""  # text already extracted
    assert "PLANTED_OUTPUT_STRING_42" not in docs.text + code.text
    assert stats["notebooks"] == 1 and stats["kept"] == 2


@pytest.mark.parametrize("metadata, language", [
    ({"kernelspec": {"name": "javascript", "language": "javascript"}}, "javascript"),
    ({"language_info": {"name": "go"}}, "go"),
    ({"kernelspec": {"language": "C++17"}}, "cpp"),
    ({}, "python"),
])
def test_notebook_code_takes_its_kernels_language(tmp_path, metadata, language):
    notebook = {**NOTEBOOK, "metadata": metadata}
    root = write_files(tmp_path / "r", {"nb/explore.ipynb": json.dumps(notebook)})
    files, _ = run_collect(root)
    assert set(files) == {"nb/explore.ipynb#markdown", f"nb/explore.ipynb#{language}"}
    assert files[f"nb/explore.ipynb#{language}"].language == language


def test_invalid_notebook_is_dropped_and_counted(tmp_path):
    root = write_files(tmp_path / "r", {"broken.ipynb": "{not json", "list.ipynb": "[1, 2]"})
    files, stats = run_collect(root)
    assert files == {}
    assert stats["dropped_invalid_notebook"] == 2


# --- symlinks, submodules, nested repositories -----------------------------------------------------

def test_symlinks_are_never_followed_and_each_is_counted(tmp_path):
    outside = write_files(tmp_path / "outside", {"secret_module.py": "OUTSIDE = 'never collected'\n"})
    root = write_files(tmp_path / "repo", {"a.py": "x = 1\n", "pkg/b.py": "y = 2\n"})
    os.symlink("loop_b", root / "loop_a")  # a -> b -> a
    os.symlink("loop_a", root / "loop_b")
    os.symlink(outside, root / "outside_dir")
    os.symlink(outside / "secret_module.py", root / "outside_file.py")
    os.symlink("missing.py", root / "broken.py")
    os.symlink("a.py", root / "inside_link.py")
    os.symlink(".", root / "self_dir")  # a directory loop: walking into it would never end
    os.symlink("pkg", root / "pkg_link")
    for git in (False, True):
        if git:
            git_init(root)
        files, stats = run_collect(root)
        assert set(files) == {"a.py", "pkg/b.py"}, git
        assert not any("secret_module" in f.path or f.abs_path.startswith(str(outside)) for f in files.values())
        assert stats["dropped_symlink_loop"] == 2
        assert stats["dropped_symlink_outside_repo_or_broken"] == 3
        assert stats["dropped_symlink"] == 3  # inside_link.py, self_dir, pkg_link


def test_submodule_and_nested_repository(tmp_path):
    root = write_files(tmp_path / "repo", {"a.py": "x = 1\n"})
    nested = write_files(root / "nested", {"inner.py": "inner = 1\n"})
    git_init(nested)
    git_init(root)  # records nested/ as a gitlink, as a submodule's checkout would be
    files, stats = run_collect(root)
    assert set(files) == {"a.py"}
    assert stats["dropped_submodule"] == 1


def test_nested_directory_in_a_plain_walk_is_walked(tmp_path):
    root = write_files(tmp_path / "plain", {"a.py": "x = 1\n", "vendor_repo/inner.py": "inner = 1\n"})
    write_files(root / "vendor_repo" / ".git", {"HEAD": "ref: refs/heads/main\n"})
    files, _ = run_collect(root)
    assert set(files) == {"a.py", "vendor_repo/inner.py"}  # .git internals never listed


# --- sensitive files -------------------------------------------------------------------------------

def test_sensitive_files_are_dropped_before_reading(tmp_path, monkeypatch):
    sensitive = {
        ".env": "DB_PASSWORD=hunter2hunter2\n",
        "config/.env.production": "A=1\n",
        "deploy/id_rsa": "-----BEGIN RSA PRIVATE KEY-----\n",
        "deploy/id_ed25519.pub": "ssh-ed25519 AAAA\n",
        "certs/x.pem": "-----BEGIN CERTIFICATE-----\n",
        "credentials.json": "{}",
        "gcp/service-account-prod.json": "{}",
        "infra/terraform.tfstate": "{}",
        ".npmrc": "//registry.npmjs.org/:_authToken=abc\n",
    }
    root = write_files(tmp_path / "r", {"a.py": "x = 1\n", **sensitive})
    git_init(root)
    opened: list[str] = []
    real_read_text, real_read_bytes = Path.read_text, Path.read_bytes
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: (opened.append(self.name), real_read_text(self, *a, **k))[1])
    monkeypatch.setattr(Path, "read_bytes", lambda self: (opened.append(self.name), real_read_bytes(self))[1])
    files, stats = run_collect(root)
    assert set(files) == {"a.py"}
    assert stats["dropped_sensitive_file"] == len(sensitive)
    assert opened == []  # collect reads no file's content (notebooks aside)


# --- bad paths -------------------------------------------------------------------------------------

def test_missing_path_raises_a_clear_repo_error(tmp_path):
    with pytest.raises(RepoError, match=r"does not exist: give the path of a checked-out repository"):
        collect(tmp_path / "nope", CollectConfig(), StageStats("collect"))  # at the call, not the first next()


def test_file_path_raises_a_clear_repo_error(tmp_path):
    path = tmp_path / "file.py"
    path.write_text("x = 1\n")
    with pytest.raises(RepoError, match=r"is a file, not a directory"):
        collect(path, CollectConfig(), StageStats("collect"))


def test_subdirectory_of_a_git_checkout_honours_its_gitignore(tmp_path):
    """A folder inside a checkout (not its root) is listed by git: the checkout's .gitignore holds,
    paths are relative to the folder, and the commit is the checkout's HEAD."""
    root = write_files(tmp_path / "repo", {
        ".gitignore": "*.log.md\nbuild/\n", "sub/a.py": "x = 1\n", "sub/notes.log.md": "# log\n",
        "sub/build/gen.py": "z = 1\n", "b.py": "y = 1\n"})
    git_init(root)
    (root / "sub" / "new.py").write_text("w = 2\n")  # untracked, not ignored: listed
    files, stats = run_collect(root / "sub")
    assert set(files) == {"a.py", "new.py"}
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert {f.commit for f in files.values()} == {head}
    assert subprocess.run(["git", "-C", str(root), "status", "--porcelain"], capture_output=True, text=True).stdout == "?? sub/new.py\n"


def test_an_ignored_folder_named_on_purpose_is_walked(tmp_path):
    """A folder the checkout ignores (site-packages in a virtual environment) is what the user asked
    for: it is walked, not listed as empty."""
    root = write_files(tmp_path / "repo", {".gitignore": ".venv/\n", "b.py": "y = 1\n",
                                           ".venv/lib/pkg/a.py": "x = 1\n", ".venv/lib/pkg/docs/a.md": "# A\n"})
    git_init(root)
    files, _ = run_collect(root / ".venv" / "lib" / "pkg")
    assert set(files) == {"a.py", "docs/a.md"}


def test_the_runs_own_files_inside_the_repository_are_left_out(tmp_path):
    # the question set that judges the run, and an output folder under the repository (an earlier run's dataset)
    root = write_files(tmp_path / "r", {"a.py": "x = 1\n", "quality/questions.jsonl": '{"query": "q"}\n',
                                        "out/run1/dataset/README.md": "# card\n"})
    stats = StageStats("collect")
    files = {f.path for f in collect(root, CollectConfig(), stats, own=[root / "quality/questions.jsonl", root / "out/run1",
                                                                         tmp_path / "elsewhere", None])}
    assert files == {"a.py"}
    assert stats["dropped_excluded"] == 2
