"""`repotune build`: the run directory it writes, and the one-line errors it gives on bad input."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import yaml
from support import FIXTURE_FILES, git_init, write_files

from pipeline.cli import main
from pipeline.config import load_recipe

STAGES = ("collect", "clean", "secrets", "chunk", "pairs", "split")


def cli_build(repo: Path, out: Path, tiny_model: str, *extra: str) -> int:
    return main(["build", str(repo), "--out", str(out), "--recipe", "smoke", "--set", f"train.base_model={tiny_model}", *extra])


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model) -> Path:
    root = write_files(tmp_path_factory.mktemp("build") / "repo", {**FIXTURE_FILES, "LICENSE": "MIT License\n\nPermission is hereby granted, free of charge..."})
    git_init(root)
    out = tmp_path_factory.mktemp("runs") / "fixture"
    assert cli_build(root, out, tiny_model) == 0
    return out


def test_build_prints_a_summary(tmp_path, fixture_repo, tiny_model, capsys):
    assert cli_build(fixture_repo, tmp_path / "r", tiny_model) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"built {tmp_path / 'r'}:") and "chunks" in out and "holdout pairs" in out


def test_manifest(run):
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["source"]["name"] == "repo" and len(manifest["source"]["commit"]) == 40
    assert manifest["seed"] == 42 and manifest["license"] == "mit"
    assert manifest["recipe"]["name"] == "smoke"
    counts = manifest["counts"]
    assert counts["chunks"] > 0 and counts["pairs"] >= counts["train_pairs"] + counts["holdout_pairs"] > 0
    assert counts["secret_findings"] == 0
    assert set(manifest["timings"]["build"]) >= set(STAGES) | {"dataset"}
    assert {"python", "datasets", "detect-secrets"} <= set(manifest["versions"])
    assert len(manifest["dataset_hash"]) == 64


def test_config_is_the_resolved_recipe(run, tiny_model):
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config == load_recipe("smoke", [f"train.base_model={tiny_model}"]).to_dict()


def test_stats_per_stage(run):
    for stage in STAGES:
        stats = json.loads((run / "stats" / f"{stage}.json").read_text())
        assert all(isinstance(v, int) for v in stats.values())
    collect = json.loads((run / "stats" / "collect.json").read_text())
    clean = json.loads((run / "stats" / "clean.json").read_text())
    assert clean["kept"] + sum(v for k, v in clean.items() if k.startswith("dropped_")) == collect["kept"]
    assert clean["dropped_near_duplicate"] >= 1  # the fixture's modules are templated: one is a near copy
    manifest = json.loads((run / "manifest.json").read_text())
    assert json.loads((run / "stats" / "chunk.json").read_text())["kept"] == manifest["counts"]["chunks"]


def test_every_drop_is_recorded_with_what_it_dropped(run):
    """dropped/<stage>.jsonl: one line per drop that names its path, commit or chunk, agreeing with stats' counts."""
    for stage in STAGES:
        stats = json.loads((run / "stats" / f"{stage}.json").read_text())
        lines = [json.loads(line) for line in (run / "dropped" / f"{stage}.jsonl").read_text().splitlines()]
        by_reason = {}
        for line in lines:
            by_reason[line["reason"]] = by_reason.get(line["reason"], 0) + 1
        assert all(by_reason[reason] <= stats[f"dropped_{reason}"] for reason in by_reason), stage
    clean = [json.loads(line) for line in (run / "dropped" / "clean.jsonl").read_text().splitlines()]
    near = [line["path"] for line in clean if line["reason"] == "near_duplicate"]
    assert len(near) == json.loads((run / "stats" / "clean.json").read_text())["dropped_near_duplicate"] >= 1
    assert set(near) <= set(FIXTURE_FILES)  # the files themselves, by their paths


def test_a_file_dropped_before_the_scan_is_recorded_with_its_path_redacted(tmp_path, tiny_model):
    """collect drops a key file before the secret scan reads its name: dropped/collect.jsonl still never holds a
    credential that stands in the path (the gate reads every file of the run)."""
    import random
    import string

    token = "ghp_" + "".join(random.Random(7).choices(string.ascii_letters + string.digits, k=36))
    repo = write_files(tmp_path / "repo", {**FIXTURE_FILES, f"deploy/{token}/.env": "X=1\n", f"keys/{token}.pem": "x\n"})
    git_init(repo)
    out = tmp_path / "run"
    assert cli_build(repo, out, tiny_model) == 0
    lines = [json.loads(line) for line in (out / "dropped" / "collect.jsonl").read_text().splitlines()]
    sensitive = [line["path"] for line in lines if line["reason"] == "sensitive_file"]
    assert len(sensitive) == 2 and all("<SECRET:" in path for path in sensitive), sensitive
    assert not [p for p in out.rglob("*") if p.is_file() and token.encode() in p.read_bytes()]


def test_secrets_report(run):
    assert json.loads((run / "secrets_report.json").read_text()) == {"policy": "redact", "findings": []}


def test_dataset_pairs_and_corpus(run):
    from datasets import load_from_disk

    pairs = load_from_disk(str(run / "dataset" / "pairs"))
    assert set(pairs) == {"train", "holdout"}
    assert pairs["train"].column_names[:2] == ["anchor", "positive"]  # what the in-batch losses expect
    corpus = load_from_disk(str(run / "dataset" / "corpus"))
    assert {"id", "text", "path", "kind", "language", "start_line", "end_line"} <= set(corpus.column_names)
    manifest = json.loads((run / "manifest.json").read_text())
    assert len(corpus) == manifest["counts"]["chunks"]
    assert len(pairs["train"]) == manifest["counts"]["train_pairs"] and len(pairs["holdout"]) == manifest["counts"]["holdout_pairs"]
    row = next(r for r in corpus if r["path"] == "pkg/parser.py" and r["symbol"] == "load_parser")
    assert row["kind"] == "code" and row["language"] == "python" and 1 <= row["start_line"] <= row["end_line"]
    lines = FIXTURE_FILES["pkg/parser.py"].split("\n")
    assert row["text"] == "\n".join(lines[row["start_line"] - 1 : row["end_line"]])  # spans are the file's own lines
    assert set(corpus["split"]) == {"train", "holdout"}
    limit = yaml.safe_load((run / "config.yaml").read_text())["train"]["max_seq_length"]
    assert max(corpus["n_tokens"]) <= limit  # no chunk is truncated when the model embeds it


def test_dataset_card(run):
    card = (run / "dataset" / "README.md").read_text()
    assert card.startswith("---\n")
    header = yaml.safe_load(card.split("---\n")[1])
    assert header["license"] == "mit" and "sentence-similarity" in header["task_categories"]
    assert {c["config_name"] for c in header["configs"]} == {"pairs", "corpus"}
    manifest = json.loads((run / "manifest.json").read_text())
    counts = manifest["counts"]
    assert f"| pairs | train | {counts['train_pairs']} |" in card
    assert f"| pairs | holdout | {counts['holdout_pairs']} |" in card
    assert f"| corpus | train | {counts['chunks']} |" in card
    assert "| clean | near_duplicate |" in card  # drop reasons reach the card
    assert manifest["source"]["commit"] in card
    # the project's home from pyproject's [project.urls], read from the installed metadata: no placeholder
    from pipeline.dataset import project_url

    assert f"[repotune]({project_url()})" in card and "https://github.com/)" not in card
    assert project_url() == tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]["urls"]["Homepage"]


def test_upsampling_is_described_in_the_card(fixture_repo, tiny_model, tmp_path):
    out = tmp_path / "up"
    assert cli_build(fixture_repo, out, tiny_model, "--set", "pairs.balance=upsample", "--set", "pairs.balance_code_share=0.3") == 0
    card = (out / "dataset" / "README.md").read_text()
    assert "every pair is kept; training repeats the minority kind until code is 0.3 of what it sees" in card
    assert "pairs dropped" not in card


def test_rebuilding_into_the_same_folder_replaces_the_dataset(run, tiny_model, tmp_path):
    root = write_files(tmp_path / "repo", FIXTURE_FILES)
    git_init(root)
    assert cli_build(root, run, tiny_model) == 0
    assert not (run / ".dataset.tmp").exists()
    assert (run / "dataset" / "pairs" / "dataset_dict.json").is_file()


# --- bad inputs: exit code 2 and one clear line on stderr, never a traceback --------------------------

def assert_one_line_error(capsys, *needles: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.replace("\r", "\n").split("\n") if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("repotune build: error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_missing_path(tmp_path, tiny_model, capsys):
    assert cli_build(tmp_path / "nope", tmp_path / "out", tiny_model) == 2
    assert_one_line_error(capsys, "does not exist", str(tmp_path / "nope"))
    assert not (tmp_path / "out").exists()  # nothing written for a bad path


def test_file_path(tmp_path, tiny_model, capsys):
    path = tmp_path / "setup.py"
    path.write_text("x = 1\n")
    assert cli_build(path, tmp_path / "out", tiny_model) == 2
    assert_one_line_error(capsys, "is a file, not a directory")


def test_empty_repository(tmp_path, tiny_model, capsys):
    root = tmp_path / "empty"
    root.mkdir()
    git_init(root, commit=False)
    assert cli_build(root, tmp_path / "out", tiny_model) == 2
    line = assert_one_line_error(capsys, "0 chunks", "holds no file to read", "git checkout")
    assert "recipe" not in line and "collect.include" not in line  # no recipe key can help an empty repository


def test_everything_filtered(tmp_path, tiny_model, capsys):
    root = write_files(tmp_path / "filtered", {
        "blob.py": b"\x00\x01\x02binary",
        "package-lock.json": '{"lockfileVersion": 3}\n',
        "vendor/lib.py": "def f():\n    return 1\n",
        "huge.md": "# big\n\n" + "text " * 500,
        ".env": "A=1\n",
    })
    assert cli_build(root, tmp_path / "out", tiny_model, "--set", "collect.max_file_bytes=1000") == 2
    line = assert_one_line_error(capsys, "0 chunks", "binary=1", "lock_file=1", "vendored=1", "too_large=1",
                                 "sensitive_file=1", "`collect.max_file_bytes`", "`clean.*`")
    assert "0 chunks after cleaning" in line


def test_bad_recipe_value(tmp_path, fixture_repo, tiny_model, capsys):
    assert cli_build(fixture_repo, tmp_path / "out", tiny_model, "--set", "train.max_step=2") == 2
    assert_one_line_error(capsys, "train.max_step", "valid keys under train")


def test_missing_base_model(tmp_path, fixture_repo, capsys):
    assert main(["build", str(fixture_repo), "--out", str(tmp_path / "o"), "--recipe", "smoke",
                 "--set", f"train.base_model={tmp_path / 'no-model'}"]) == 2
    assert_one_line_error(capsys, "does not exist", "train.base_model")


TINY_REPO = {
    "calc.py": 'def add(a, b):\n    """Add two numbers and return their sum."""\n    return a + b\n',
    "README.md": "# Tiny\n\nThis repository adds numbers with `add`.\n",
    "logo.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "empty.txt": "",
    "latin1.txt": "Caf\xe9 cr\xe8me, na\xefve r\xe9sum\xe9 of the project.\n".encode("latin-1"),
}


def test_tiny_repository_ends_with_a_valid_dataset_and_one_clear_line(tmp_path, tiny_model, capsys):
    """One two-line documented function and one Markdown file give a pair in train and none in
    holdout: the dataset on disk reads back, and the error names the counts and the recipe key."""
    from pipeline.dataset import load_pairs
    from pipeline.rundir import RunDir

    root = write_files(tmp_path / "tiny", TINY_REPO)
    git_init(root)
    assert cli_build(root, tmp_path / "out", tiny_model) == 2
    line = assert_one_line_error(capsys, " pairs (1 pairs from 3 chunks in 3 files", "`split.holdout_fraction`")
    pairs = load_pairs(RunDir(tmp_path / "out"))  # an empty split is saved in a form that loads
    empty, other = ("train", "holdout") if len(pairs["train"]) == 0 else ("holdout", "train")
    assert len(pairs[empty]) == 0 and f"0 {empty} pairs" in line and f"{len(pairs[other])} {other}" in line


def test_an_empty_split_reads_back(tmp_path):
    from pipeline.dataset import ChunkStore, load_pairs, write_dataset
    from pipeline.records import Pair
    from pipeline.rundir import RunDir

    pair = Pair("add two numbers", "def add(a, b): return a + b", "docstring_code", "calc.py", "code", "code", "a", "b", kind="code")
    run = RunDir(tmp_path / "r")
    run.root.mkdir()
    for train, holdout in (([pair], []), ([], [pair]), ([], [])):
        write_dataset(run, train, holdout, ChunkStore(tmp_path / "chunks.arrow"), set())
        loaded = load_pairs(run)
        assert (len(loaded["train"]), len(loaded["holdout"])) == (len(train), len(holdout))


# --- small random repositories: a clean exit or one clear line, never a traceback, never a secret ---

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_SECRET = "hf_" + "Zq9" * 11 + "x"  # a real-format Hugging Face token, planted in some files
_TEXTS = {
    "function": lambda n: "".join(f'def f{i}(x):\n    """Return x plus {i}, a documented step."""\n    y = x + {i}\n    return y\n\n\n'
                                  for i in range(n)),
    "markdown": lambda n: "".join(f"## Section {i}\n\nThis section explains step {i} of the process in a sentence.\n\n" for i in range(n)),
    "prose": lambda n: "Words of a plain note. " * (n * 7),
    "secret": lambda n: f"curl -H 'Authorization: Bearer {_SECRET}' https://api.example.org\nTOKEN={_SECRET}\n" * max(n, 1),
    "empty": lambda n: "",
    "unicode": lambda n: "Ünïcödé ✓ 漢字 😀 " * (n * 5),
}
_SUFFIXES = [".py", ".md", ".rst", ".txt", ".js", ".sh", ".yaml", ".json", ".ipynb", ".bin", ""]
_ENCODINGS = ["utf-8", "utf-8-sig", "latin-1", "utf-16", "cp1252"]


@st.composite
def small_repos(draw) -> dict[str, bytes]:
    files = {}
    for i in range(draw(st.integers(1, 5))):
        suffix = draw(st.sampled_from(_SUFFIXES))
        text = _TEXTS[draw(st.sampled_from(sorted(_TEXTS)))](draw(st.integers(0, 6)))
        raw = draw(st.binary(max_size=64)) if suffix == ".bin" else text.encode(draw(st.sampled_from(_ENCODINGS)), "replace")
        files[f"{draw(st.sampled_from(['', 'src/', 'docs/']))}f{i}{suffix}"] = raw
    return files


@settings(max_examples=min(settings.default.max_examples, 25), suppress_health_check=[HealthCheck.too_slow])
@given(files=small_repos())
def test_small_random_repositories_never_crash_nor_leak(files, tiny_model, tmp_path_factory):
    import contextlib
    import io

    root = write_files(tmp_path_factory.mktemp("random") / "repo", files)
    out = root.parent / "out"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cli_build(root, out, tiny_model)  # an exception would fail the test: no traceback allowed
    lines = [line for line in err.getvalue().replace("\r", "\n").split("\n") if line.strip()]
    if code == 0:
        from pipeline.dataset import load_corpus, load_pairs
        from pipeline.rundir import RunDir

        pairs = load_pairs(RunDir(out))
        assert len(pairs["train"]) and len(pairs["holdout"]) and len(load_corpus(RunDir(out)))
    else:
        assert code == 2 and len(lines) == 1 and lines[0].startswith("repotune build: error: "), err.getvalue()
    assert "Traceback" not in err.getvalue()
    if out.exists():
        for path in out.rglob("*"):
            assert not path.is_file() or _SECRET.encode() not in path.read_bytes(), path


def test_any_number_of_workers_builds_the_same_dataset(tmp_path, fixture_repo, tiny_model):
    """Duplicates, pairs and the split are decided in the files' order whatever the pool's size: the
    dataset hash, every stage's counts and the corpus are the same with one process and with two."""
    runs = {}
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        assert cli_build(fixture_repo, out, tiny_model, "--set", f"build.workers={workers}") == 0
        runs[workers] = out
    manifests = {w: json.loads((out / "manifest.json").read_text()) for w, out in runs.items()}
    assert manifests[1]["dataset_hash"] == manifests[2]["dataset_hash"]
    assert (manifests[1]["timings"]["build_workers"], manifests[2]["timings"]["build_workers"]) == (1, 2)
    for stage in STAGES:
        assert (runs[1] / "stats" / f"{stage}.json").read_text() == (runs[2] / "stats" / f"{stage}.json").read_text()
    assert not (runs[2] / ".build").exists()  # the chunk store is gone once the corpus is saved


def test_a_rebuild_that_changes_the_dataset_under_a_model_says_so(fixture_repo, tmp_path, tiny_model, capsys):
    """The model in the run directory was trained on the old dataset: the rebuild says so, and what to run."""
    out = tmp_path / "out"
    assert cli_build(fixture_repo, out, tiny_model) == 0
    (out / "model").mkdir()
    (out / "model" / "modules.json").write_text("[]")  # a model trained on this dataset, as far as the build can tell
    assert cli_build(fixture_repo, out, tiny_model) == 0
    assert "changed" not in capsys.readouterr().err  # the same dataset: nothing to say
    (fixture_repo / "pkg" / "later.py").write_text('def later(value):\n    """Double the value, a later change."""\n    return 2 * value\n')
    assert cli_build(fixture_repo, out, tiny_model) == 0
    err = capsys.readouterr().err
    assert "the dataset in" in err and "changed" in err and f"repotune train {out} --fresh" in err
