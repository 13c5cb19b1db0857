"""console: a default run shows repotune's own lines only; -v shows the libraries'; --quiet one line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def run_cli(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.pop("PYTHONWARNINGS", None)
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory, tiny_model):
    from support import FIXTURE_FILES, git_init, write_files

    root = tmp_path_factory.mktemp("console")
    repo = write_files(root / "repo", FIXTURE_FILES)
    git_init(repo)
    common = ["--recipe", "smoke", "--set", f"train.base_model={tiny_model}", "--set", "train.batch_size=8",
              "--set", "evaluate.mteb=false", "--set", "train.max_steps=3"]
    return {flags: run_cli([*flags, "run", str(repo), "--out", str(root / "-".join(flags or ("default",))), *common])
            for flags in ((), ("--quiet",), ("-v",))}


def test_a_default_run_shows_only_repotune_lines(outputs):
    proc = outputs[()]
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = proc.stdout + proc.stderr
    foreign = [line for line in text.splitlines() if line.startswith(("INFO", "DEBUG")) or " INFO " in line]
    assert foreign == []
    assert "Warning" not in text and "warn" not in text.lower()
    assert "Loading weights" not in text and "Saving the dataset" not in text and "{'loss'" not in text
    assert "built " in proc.stderr and "trained " in proc.stderr and "evaluated " in proc.stderr  # a line per stage
    assert "holdout " in proc.stdout and "STS-B Spearman" in proc.stdout and "next: `repotune gate" in proc.stdout  # the summary


def test_quiet_prints_the_final_line_only(outputs):
    proc = outputs[("--quiet",)]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr == ""
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and "holdout nDCG@10 base" in lines[0] and "report.md" in lines[0]


def test_verbose_shows_the_libraries_too(outputs):
    proc = outputs[("-v",)]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert any(line.startswith("INFO sentence_transformers") for line in proc.stderr.splitlines())
    assert "DEBUG repotune" in proc.stderr or "INFO repotune" in proc.stderr


def test_piped_output_gets_a_progress_line_at_an_interval_and_quiet_gets_none(monkeypatch, capsys):
    """A notebook cell pipes repotune's output: training and evaluation print a line every LINE_SECONDS (done / total,
    time left, rate), not a bar redrawn with carriage returns; --quiet prints none."""
    import logging

    import pipeline.console as console

    def three_steps(level: int) -> str:
        console.log.setLevel(level)  # what the CLI sets; setLevel (not the attribute) clears logging's cache
        bar = console.progress(total=3, desc="training", unit="step")
        for _ in range(3):
            bar.update()
        bar.close()
        return capsys.readouterr().err

    monkeypatch.setattr(console, "LINE_SECONDS", 0.0)
    level = console.log.level
    try:
        err, quiet = three_steps(logging.INFO), three_steps(logging.WARNING)
    finally:
        console.log.setLevel(level)
    lines = [line for line in err.splitlines() if line.startswith("training: ")]
    assert lines and lines[-1].startswith("training: 3/3 steps [") and "<" in lines[-1] and "\r" not in err
    assert quiet == ""


def test_version_prints_the_installed_version(capsys):
    from importlib import metadata

    from pipeline.cli import main

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"repotune {metadata.version('repotune')}"


def test_a_librarys_forced_bars_are_hidden_and_its_other_output_kept(capsys):
    """sentence-transformers' hard-negative miner draws its bars whatever TQDM_DISABLE says: they are held back,
    and anything else it writes (a warning) still reaches the terminal."""
    import logging

    from tqdm import tqdm

    import pipeline.console as console

    level = console.log.level
    console.log.setLevel(logging.INFO)
    try:
        with console.library_bars_hidden():
            for _ in tqdm(range(3), desc="Batches", disable=False, mininterval=0):
                pass
            sys.stderr.write("UserWarning: something worth reading\n")
    finally:
        console.log.setLevel(level)
    err = capsys.readouterr().err
    assert "Batches" not in err and "UserWarning: something worth reading" in err
