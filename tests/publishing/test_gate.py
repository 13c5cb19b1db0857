"""The governance gate: markers <-> PR checklist <-> policy, and each check failing on a run
crafted to violate it while a good smoke run passes them all."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from pipeline.publishing.gate import MARKERS, is_current, run_gate
from pipeline.rundir import RunDir

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / ".github" / "pull_request_template.md"
POLICY = ROOT / "quality" / "policy.yaml"


# --- mapping: registered markers <-> checklist lines <-> suites <-> policy ----------------------------

def registered_markers() -> dict[str, str]:
    """pyproject.toml's gate markers with their descriptions."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    described = dict(m.split(": ", 1) for m in config["markers"])
    return {name: text for name, text in described.items() if name not in {"governance", "slow", "browser", "default_target"}}


def checklist_markers(text: str) -> list[tuple[str, str]]:
    """The marker and description on each checkbox line of the template's 'Governance gate' section."""
    section = text.split("## Governance gate", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^- \[ \] `([a-z_]+)`: (.*) \(`pytest -m \1 --run-dir runs/latest`\)$", section, flags=re.M)


def readme_markers(text: str) -> list[tuple[str, str]]:
    """The README's list of gate markers: `- `marker`: description` between its gate-markers comments."""
    section = text.split("<!-- gate-markers:start -->", 1)[1].split("<!-- gate-markers:end -->", 1)[0]
    return re.findall(r"^- `([a-z_]+)`: (.*)$", section, flags=re.M)


def mapping_problems(described: list[tuple[str, str]], where: str) -> list[str]:
    """How a list of (marker, description) differs from gate.MARKERS: one line each, once per marker, the same text."""
    names = [name for name, _ in described]
    problems = [f"marker `{m}` has no line in {where}" for m in MARKERS if m not in names]
    problems += [f"{where} names `{m}`, which is no gate marker" for m in names if m not in MARKERS]
    problems += [f"{where} names `{m}` twice" for m in sorted({m for m in names if names.count(m) > 1})]
    problems += [f"{where} describes `{m}` as {text!r}, gate.MARKERS as {MARKERS[m]!r}" for m, text in described
                 if m in MARKERS and text != MARKERS[m]]
    return problems


def test_checklist_maps_one_to_one_onto_markers():
    """One list of markers and their descriptions (gate.MARKERS): pyproject's, the PR template's and the README's say
    the same (the docs site's gate page is generated from it, docs/hooks.py)."""
    assert mapping_problems(list(registered_markers().items()), "pyproject.toml") == []
    assert mapping_problems(checklist_markers(TEMPLATE.read_text()), "the PR template") == []
    assert mapping_problems(readme_markers((ROOT / "README.md").read_text()), "README.md") == []


def test_mapping_check_fails_when_a_line_is_removed_or_reworded():
    lines = TEMPLATE.read_text().split("\n")
    without = "\n".join(line for line in lines if not line.startswith("- [ ] `balance`"))
    assert mapping_problems(checklist_markers(without), "t") == ["marker `balance` has no line in t"]
    reworded = TEMPLATE.read_text().replace(MARKERS["sts"], "tuned beats base on STS")
    assert mapping_problems(checklist_markers(reworded), "t") == [f"t describes `sts` as 'tuned beats base on STS', gate.MARKERS as {MARKERS['sts']!r}"]


def test_every_marker_has_one_suite_file():
    files = {p.stem.removeprefix("test_") for p in (ROOT / "quality").glob("test_*.py")}
    assert files == set(MARKERS)
    for marker in MARKERS:
        assert f"pytest.mark.{marker}" in (ROOT / "quality" / f"test_{marker}.py").read_text()


def test_every_threshold_has_a_check_and_every_check_a_threshold():
    import yaml

    policy = yaml.safe_load(POLICY.read_text())
    defined = {f"{section}.{key}" for section, keys in policy.items() for key in keys}
    used = set()
    for path in (ROOT / "quality").glob("test_*.py"):
        used |= {f"{s}.{k}" for s, k in re.findall(r'policy\["(\w+)"\]\["(\w+)"\]', path.read_text())}
    assert defined - used == set(), "thresholds no check reads"
    assert used - defined == set(), "checks reading a threshold the policy lacks"
    assert set(policy) == set(MARKERS)


# --- the gate on real runs ---------------------------------------------------------------------------

# The smoke run's source: this repository as at a pinned commit, with its history up to it. A 10-step run sits near
# the overfitting check's edge (tuned > base on the holdout), and built from the working tree any edit, a README
# paragraph or one more commit in the history stage, moved that verdict (2026-12-06: -0.005). Pinned, only a change
# to the pipeline's code can move it. Move the pin forward on purpose, after `pytest tests/publishing/test_gate.py`.
SMOKE_SOURCE = "be7cb6f5448e2c405b270f861e09769072e050cc"


def smoke_source(dest: Path) -> Path:
    """A clone of this repository checked out at ``SMOKE_SOURCE``; the working tree itself where that commit is
    not in the checkout (a shallow clone), with a warning that the run then follows every edit."""
    clone = subprocess.run(["git", "clone", "-q", "--no-checkout", str(ROOT), str(dest)], capture_output=True, text=True)
    if clone.returncode == 0:
        checkout = subprocess.run(["git", "-C", str(dest), "checkout", "-q", "--detach", SMOKE_SOURCE],
                                  capture_output=True, text=True)
        if checkout.returncode == 0:
            return dest
    import warnings

    warnings.warn(f"commit {SMOKE_SOURCE[:7]} is not in this checkout: the smoke run is built from the working tree", stacklevel=2)
    return ROOT


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory) -> RunDir:
    """A real smoke run (packaged MiniLM, 10 steps) on this repository at ``SMOKE_SOURCE``: what CI gates."""
    from pipeline.build import build
    from pipeline.config import load_recipe
    from pipeline.evaluation.evaluate import evaluate
    from pipeline.training.train import train

    tmp = tmp_path_factory.mktemp("gate")
    source, out = smoke_source(tmp / "source"), tmp / "smoke"
    # the question set and the code cap as `make train` has them: this repository mines ~94 % code pairs, against the
    # balance check's 95 % bound, and one file more or less in the holdout moves that by a point. Without tests/ (no
    # question points there) and MTEB (no check reads it): evaluating embeds the corpus twice, most of make test's time
    exclude = [*load_recipe("smoke").collect.exclude, "tests/**"]
    recipe = load_recipe("smoke", [f"evaluate.questions={source / 'quality' / 'questions.jsonl'}",
                                   "pairs.balance_code_share=0.85", "evaluate.mteb=false",
                                   f"collect.exclude=[{','.join(exclude)}]"])
    build(source, out, recipe)
    train(out, recipe)
    evaluate(out)
    return RunDir(out)


def _copy(run: RunDir, tmp_path: Path) -> RunDir:
    shutil.copytree(run.root, tmp_path / "run")
    return RunDir(tmp_path / "run")


def _failed(result: dict) -> set[str]:
    return {c["marker"] for c in result["checks"] if not c["passed"]}


def test_good_smoke_run_passes_every_check(smoke_run):
    result = run_gate(smoke_run.root)
    failed = [(c["check"], c["value"], c["limit"], c["message"]) for c in result["checks"] if not c["passed"]]
    assert failed == []
    assert result["passed"] and result["complete"]
    assert {c["marker"] for c in result["checks"]} == set(MARKERS)
    assert all(c["value"] is not None and c["limit"] is not None for c in result["checks"])
    assert is_current(smoke_run, result) == (True, "")


def _rewrite_dataset(run: RunDir, keep) -> None:
    from datasets import DatasetDict, load_from_disk

    pairs = load_from_disk(str(run.pairs))
    tmp = run.root / "pairs.new"  # a dataset cannot overwrite the files it is read from
    DatasetDict({split: ds.filter(keep) for split, ds in pairs.items()}).save_to_disk(str(tmp))
    del pairs
    shutil.rmtree(run.pairs)
    tmp.rename(run.pairs)


def _edit_metrics(run: RunDir, edit) -> None:
    metrics = json.loads(run.metrics.read_text())
    edit(metrics)
    run.metrics.write_text(json.dumps(metrics))


def test_planted_secret_fails_secrets(smoke_run, tmp_path):
    run = _copy(smoke_run, tmp_path)
    with open(run.report, "a") as f:
        f.write("\naws_access_key_id = AKIAIOSFODNN7REALKEY\n")
    result = run_gate(run.root, extra_args=["-m", "governance and secrets"])
    assert _failed(result) == {"secrets"}
    assert "AKIAIOSFODNN7REALKEY" not in run.governance.read_text()  # the report names type and place, never the value


def test_code_only_dataset_fails_balance(smoke_run, tmp_path):
    run = _copy(smoke_run, tmp_path)
    _rewrite_dataset(run, lambda row: row["kind"] == "code")
    result = run_gate(run.root, extra_args=["-m", "governance and balance"])
    assert _failed(result) == {"balance"}
    assert {c["check"] for c in result["checks"] if not c["passed"]} == {"test_code_share_of_pairs"}


def test_training_that_tilts_far_from_the_repository_fails_balance(smoke_run, tmp_path):
    """Docs pairs only, from a repository of ~90 % code chunks: the code miners found nothing, and both checks say so."""
    run = _copy(smoke_run, tmp_path)
    _rewrite_dataset(run, lambda row: row["kind"] == "docs")
    result = run_gate(run.root, extra_args=["-m", "governance and balance"])
    failed = {c["check"]: c for c in result["checks"] if not c["passed"]}
    assert set(failed) == {"test_code_share_of_pairs", "test_training_mix_against_the_repository"}
    tilt = failed["test_training_mix_against_the_repository"]
    assert tilt["value"] < -0.35 and "pairs.balance_code_share" in tilt["message"] and "no code pair was mined" in \
        failed["test_code_share_of_pairs"]["message"]


def test_upsampled_pairs_are_judged_by_what_training_sees(smoke_run, tmp_path):
    """`pairs.balance: upsample` keeps every code pair in the dataset and repeats the docs pairs in
    training: the balance check reads the repeated order, so the same pairs fail as built and pass
    under upsampling."""
    run = _copy(smoke_run, tmp_path)
    seen = {"docs": 0}

    def two_docs_pairs(row) -> bool:  # every code pair, and two docs pairs: ~99 % code
        seen["docs"] += row["kind"] == "docs"
        return row["kind"] == "code" or seen["docs"] <= 2

    _rewrite_dataset(run, two_docs_pairs)
    manifest = json.loads(run.manifest.read_text())
    manifest["recipe"]["pairs"].update(balance="downsample")  # training sees the pairs as built: ~99 % code
    run.manifest.write_text(json.dumps(manifest))
    assert _failed(run_gate(run.root, extra_args=["-m", "governance and balance"])) == {"balance"}
    manifest["recipe"]["pairs"].update(balance="upsample", balance_code_share=0.8)
    run.manifest.write_text(json.dumps(manifest))
    result = run_gate(run.root, extra_args=["-m", "governance and balance"])
    assert _failed(result) == set()
    assert abs(next(c["value"] for c in result["checks"] if c["check"] == "test_code_share_of_pairs") - 0.8) < 0.01


def test_a_broken_chunker_fails_chunk_invariants_with_its_example(smoke_run, tmp_path, monkeypatch):
    """The Hypothesis properties record a value that can fail: a chunker that loses a file's first chunk (patched in
    the gate's process by a pytest plugin on PYTHONPATH) is caught, with Hypothesis' failing example in the message."""
    run = _copy(smoke_run, tmp_path)
    (tmp_path / "breakchunker.py").write_text(
        "import pipeline.ingest.chunk as chunk\n\n"
        "_whole = chunk.Chunker.chunk_file\n\n\n"
        "def pytest_configure(config):\n"
        "    chunk.Chunker.chunk_file = lambda self, source: _whole(self, source)[1:]\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    result = run_gate(run.root, extra_args=["-m", "governance and chunk_invariants", "-p", "breakchunker"])
    failed = {c["check"]: c for c in result["checks"] if not c["passed"]}
    assert {"test_chunker_properties_on_any_text", "test_chunker_properties_on_python"} <= set(failed)
    assert all(c["value"] == 1 and c["limit"] == "<= 0" and "holds(" in c["message"]
               for name, c in failed.items() if name.startswith("test_chunker_properties"))


def test_a_chunk_that_does_not_match_its_id_fails_chunk_invariants(smoke_run, tmp_path):
    from datasets import load_from_disk

    run = _copy(smoke_run, tmp_path)
    corpus = load_from_disk(str(run.corpus))
    edited = corpus.map(lambda row, i: {"text": row["text"] + " changed"} if i == 0 else {}, with_indices=True)
    edited.save_to_disk(str(run.root / "corpus.new"))
    del corpus, edited
    shutil.rmtree(run.corpus)
    (run.root / "corpus.new").rename(run.corpus)
    result = run_gate(run.root, extra_args=["-m", "governance and chunk_invariants"])
    failed = {c["check"]: c for c in result["checks"] if not c["passed"]}
    assert set(failed) == {"test_run_chunks_obey_the_invariants"} and failed["test_run_chunks_obey_the_invariants"]["value"] >= 1


def test_too_small_dataset_fails_dataset_size(smoke_run, tmp_path):
    run = _copy(smoke_run, tmp_path)
    counter = iter(range(10**9))
    _rewrite_dataset(run, lambda row: next(counter) < 5)
    result = run_gate(run.root, extra_args=["-m", "governance and dataset_size"])
    assert {c["check"] for c in result["checks"] if not c["passed"]} == {"test_train_pairs", "test_holdout_pairs"}


def test_gap_added_by_tuning_fails_overfitting_and_the_absolute_gap_does_not(smoke_run, tmp_path):
    run = _copy(smoke_run, tmp_path)
    # a hard holdout: both models score 0.3 less there than on training files; tuning added nothing
    _edit_metrics(run, lambda m: m.update(overfit_gap=m["base_gap"] + 0.01, base_gap=m["base_gap"]))
    assert _failed(run_gate(run.root, extra_args=["-m", "governance and overfitting"])) == set()
    _edit_metrics(run, lambda m: m.update(overfit_gap=m["base_gap"] + 0.9))
    result = run_gate(run.root, extra_args=["-m", "governance and overfitting"])
    assert {c["check"] for c in result["checks"] if not c["passed"]} == {"test_gap_added_by_tuning"}
    row = next(c for c in result["checks"] if c["check"] == "test_gap_added_by_tuning")
    assert row["value"] == 0.9 and "train fewer epochs" in row["message"] and "95 % interval" in row["message"]


def test_worse_on_holdout_beyond_the_margin_fails_overfitting(smoke_run, tmp_path):
    run = _copy(smoke_run, tmp_path)
    _edit_metrics(run, lambda m: m["holdout"]["tuned"].update({"ndcg@10": m["holdout"]["base"]["ndcg@10"] - 0.01}))
    assert _failed(run_gate(run.root, extra_args=["-m", "governance and overfitting"])) == set()  # inside the margin
    _edit_metrics(run, lambda m: m["holdout"]["tuned"].update({"ndcg@10": m["holdout"]["base"]["ndcg@10"] - 0.05}))
    result = run_gate(run.root, extra_args=["-m", "governance and overfitting"])
    assert {c["check"] for c in result["checks"] if not c["passed"]} == {"test_tuned_not_worse_than_base_on_holdout"}
    row = next(c for c in result["checks"] if c["check"] == "test_tuned_not_worse_than_base_on_holdout")
    assert row["value"] == 0.05 and "95 % interval" in row["message"] and "queries" in row["message"]


def test_worse_on_questions_fails_questions_and_the_message_is_whole(smoke_run, tmp_path):
    run = _copy(smoke_run, tmp_path)
    _edit_metrics(run, lambda m: m["questions"]["tuned"].update({"ndcg@10": m["questions"]["base"]["ndcg@10"] - 0.1}))
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "quality"), "-m", "governance and questions", f"--run-dir={run.root}", "-p", "no:cacheprovider", "-q"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 1
    result = json.loads(run.governance.read_text())
    assert _failed(result) == {"questions"}
    row = next(c for c in result["checks"] if not c["passed"])
    assert row["check"] == "test_tuned_not_worse_than_base_on_questions" and row["value"] == pytest.approx(0.1)
    # the terminal shows each failed check whole: value, limit and what to do, never cut mid-number
    assert "questions/test_tuned_not_worse_than_base_on_questions: value 0.1, limit <= 0.02" in proc.stdout
    assert "read report.md's 'Question set' section" in proc.stdout


def _history(n: int, base: float, tuned: float, ci: list[float]) -> dict:
    return {"n": n, "base": {"ndcg@10": base}, "tuned": {"ndcg@10": tuned}, "delta": round(tuned - base, 4), "delta_ci": ci}


def test_a_run_without_a_question_set_is_judged_by_the_history_yardstick(smoke_run, tmp_path):
    """No labelling needed: without a question set the gate judges the held-out commits' subjects; a drop fails only
    where its interval lies below 0, too few commits fail the size check, and no yardstick at all fails both."""
    run = _copy(smoke_run, tmp_path)

    def gate_with(history: dict | None) -> dict:
        _edit_metrics(run, lambda m: (m.pop("questions", None), m.update(history=history or {"n": 0, "skipped": "no git history"})))
        result = run_gate(run.root, extra_args=["-m", "governance and questions"])
        return {c["check"]: c for c in result["checks"]}

    checks = gate_with(_history(24, 0.30, 0.36, [0.01, 0.11]))
    assert all(c["passed"] for c in checks.values()) and checks["test_question_set_size"]["value"] == 24
    checks = gate_with(_history(24, 0.36, 0.30, [-0.12, 0.01]))  # worse, inside the noise
    assert checks["test_tuned_not_worse_than_base_on_questions"]["passed"]
    checks = gate_with(_history(24, 0.36, 0.30, [-0.12, -0.01]))  # worse, and the interval says so
    failed = checks["test_tuned_not_worse_than_base_on_questions"]
    assert not failed["passed"] and "history yardstick (24 held-out commit subjects)" in failed["message"]
    checks = gate_with(_history(6, 0.30, 0.36, [0.01, 0.11]))
    assert not checks["test_question_set_size"]["passed"] and "history.min_holdout" in checks["test_question_set_size"]["message"]
    checks = gate_with(None)
    assert not any(c["passed"] for c in checks.values())
    assert all("evaluate.questions" in c["message"] and "no git history" in c["message"] for c in checks.values())


def test_sts_collapse_fails_sts(smoke_run, tmp_path):
    run = _copy(smoke_run, tmp_path)
    _edit_metrics(run, lambda m: m["sts"].update(tuned_spearman=0.3))
    result = run_gate(run.root, extra_args=["-m", "governance and sts"])
    assert {c["check"] for c in result["checks"] if not c["passed"]} == {"test_tuned_sts_floor", "test_sts_drop_against_base"}


def test_missing_metrics_fails_with_the_command_to_run(smoke_run, tmp_path):
    run = _copy(smoke_run, tmp_path)
    run.metrics.unlink()
    result = run_gate(run.root, extra_args=["-m", "governance and sts"])
    assert not result["passed"]
    assert all("repotune evaluate" in c["message"] for c in result["checks"])


def test_stale_gate_result_is_recognised(smoke_run, tmp_path):
    run = _copy(smoke_run, tmp_path)
    result = json.loads(smoke_run.governance.read_text()) if smoke_run.governance.is_file() else run_gate(run.root)
    manifest = json.loads(run.manifest.read_text())
    manifest["dataset_hash"] = "0" * 64
    run.manifest.write_text(json.dumps(manifest))
    current, reason = is_current(run, result)
    assert not current and "dataset changed" in reason


def test_a_model_trained_on_an_older_dataset_is_refused_in_one_line(smoke_run, tmp_path):
    """A rebuild into the run directory: the dataset hash moves on, the model and metrics are the old dataset's.
    `repotune gate` and `pytest -m governance` refuse in one line naming the command to rerun, and write no result."""
    from pipeline.rundir import RunError

    run = _copy(smoke_run, tmp_path)
    run.update_manifest(dataset_hash="0" * 64)
    with pytest.raises(RunError, match=r"was trained on dataset .*repotune train .* --fresh"):
        run_gate(run.root)
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "quality"), "-m", "governance", f"--run-dir={run.root}", "-p", "no:cacheprovider", "-q"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and "was trained on dataset" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr and not run.governance.exists()


# --- the README's flow, literally ----------------------------------------------------------------------

def test_gate_takes_a_relative_run_path_from_any_folder(smoke_run, tmp_path, monkeypatch):
    run = _copy(smoke_run, tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # outside the checkout, where pytest itself runs
    result = run_gate("../run", extra_args=["-m", "governance and dataset_size"])
    assert result["checks"] and _failed(result) == set()
    assert Path(result["run"]) == run.root.resolve()


def test_a_pytest_without_repotune_says_in_one_line_what_to_run():
    # `-p no:repotune` blocks the installed plugin: what a pytest from another environment sees
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:repotune", "-m", "governance", "-p", "no:cacheprovider"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert len(lines) == 1 and ".venv/bin/python -m pytest -m governance" in lines[0], lines


def test_the_gate_runs_from_a_wheel_install_without_the_checkout(smoke_run, tmp_path):
    """The built wheel in a fresh venv (its dependencies read from this environment through a .pth, so
    nothing is downloaded), from a folder outside the checkout: `repotune gate RUN` runs every suite the
    wheel ships, and `pytest --pyargs pipeline.quality -m governance` finds them too."""
    import sysconfig
    import venv

    run = _copy(smoke_run, tmp_path)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "wheel"),
                    str(ROOT)], check=True, capture_output=True, timeout=600)
    [wheel] = (tmp_path / "wheel").glob("repotune-*.whl")
    venv.create(tmp_path / "venv", with_pip=False)
    python = tmp_path / "venv" / "bin" / "python"
    site = subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True).strip()
    (Path(site) / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # not a site dir: its .pth stay unread
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, timeout=600)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shipped = subprocess.check_output([str(python), "-c", "from pipeline.publishing.gate import QUALITY_DIR; print(QUALITY_DIR)"],
                                      cwd=elsewhere, text=True).strip()
    assert Path(shipped) == Path(site) / "pipeline" / "quality"  # the wheel's copy, not this checkout's quality/

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    gate = subprocess.run([str(tmp_path / "venv" / "bin" / "repotune"), "gate", str(run.root)], cwd=elsewhere, env=env,
                          capture_output=True, text=True, timeout=900)
    result = json.loads(run.governance.read_text())
    assert gate.returncode == 0 and result["passed"] and result["complete"], gate.stdout[-3000:] + gate.stderr[-3000:]
    assert {c["marker"] for c in result["checks"]} == set(MARKERS)
    one = subprocess.run([str(python), "-m", "pytest", "--pyargs", "pipeline.quality", "-m", "governance and dataset_size",
                          f"--run-dir={run.root}", "-p", "no:cacheprovider", "-q"], cwd=elsewhere, env=env,
                         capture_output=True, text=True, timeout=900)
    assert one.returncode == 0 and " passed" in one.stdout, one.stdout[-3000:] + one.stderr[-3000:]


def test_a_pytest_lacking_repotunes_dependencies_says_in_one_line_what_to_run():
    """A python that finds the checkout (its metadata registers the plugin) but not repotune's dependencies, as the
    system `python3 -m pytest -m governance` does: one line, no collection tracebacks."""
    code = ("import sys, pytest; sys.modules['datasketch'] = None; "
            "sys.exit(pytest.main(['-m', 'governance', '-p', 'no:cacheprovider']))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert len(lines) == 1 and "lacks datasketch" in lines[0] and ".venv/bin/python -m pytest -m governance" in lines[0], lines
