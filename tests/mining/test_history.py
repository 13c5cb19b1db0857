"""history: commit messages judged and cleaned, hunks placed on the definitions at HEAD, the newest held
out; commit_definition pairs in the build; the history yardstick in evaluate; non-git and shallow sources."""

from __future__ import annotations

import json
import os
import random
import shutil
import string
import subprocess
from pathlib import Path

import pytest
from support import FIXTURE_FILES, write_files

from pipeline.config import HistoryConfig, load_recipe, recipe_from_dict
from pipeline.mining.history import header_name, heldout_count
from pipeline.mining.messages import clean_message, message_reason, subject_of
from pipeline.rundir import RunDir

# a GitHub token's shape, fresh each run: ghp_ + 36 random letters and digits
TOKEN = "ghp_" + "".join(random.SystemRandom().choice(string.ascii_letters + string.digits) for _ in range(36))


# --- messages ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("message, reason", [
    ("Merge pull request #4 from someone/feature", "merge"),
    ("Merge branch 'main' into feature", "merge"),
    ('Revert "Add the cache"', "revert"),
    ("fixup! Add the cache", "fixup"),
    ("Bump requests from 2.31.0 to 2.32.0", "dependency_update"),
    ("chore(deps): update all dependencies", "dependency_update"),
    ("bump version to 0.2.0", "version_bump"),
    ("Release 2.0", "version_bump"),
    ("v1.2.3", "version_bump"),
    ("fix typo", "typo"),
    ("Fix spelling in the parser's errors", "typo"),
    ("style: black", "format"),
    ("Reformat the package with ruff", "format"),
    ("Fix lint errors in the loader", "lint"),
    ("Add a retry loop to the loader", None),
    ("Bump the chunk limit of the loader", None),  # a bump that is no version
    ("Support a new output format for the report", None),
])
def test_message_rules(message, reason):
    assert message_reason(subject_of(message)) == reason


@pytest.mark.parametrize("raw, names, cleaned", [
    ("Route requests by their longest matching prefix (#12)\n\nSigned-off-by: Jane Doe <jane@example.com>", (), "Route requests by their longest matching prefix"),
    ("Fix the parser\nSigned-off-by: Jane Doe <jane@example.com>", (), "Fix the parser"),  # a trailer without a blank line before it
    ("feat(parser): handle empty lines, thanks @bob (closes #7) see https://example.org/x", (), "handle empty lines"),
    ("Store values under a namespaced key for ann.lee@example.com", (), "Store values under a namespaced key"),
    ("Jane Doe taught the loader to retry, GH-12", ("Jane Doe",), "taught the loader to retry"),
    ("Use UTF-8 and SHA-256 for PROJ-123 keys", (), "Use UTF-8 and SHA-256 for keys"),
    ("Handle the cache in the loader\n\nA longer body.\n\nCo-authored-by: Ann Lee <ann@example.io>", (), "Handle the cache in the loader"),
])
def test_clean_message(raw, names, cleaned):
    assert clean_message(raw, names) == cleaned


def test_header_names_and_the_holdout_size():
    assert header_name("def add_item(self, item, check=True):") == "add_item"
    assert header_name("class CacheManager(Base):") == "CacheManager"
    assert header_name("func (e *Engine) ServeHTTP(w http.ResponseWriter) {") == "ServeHTTP"
    assert header_name("public static int parseLine(String s) {") == "parseLine"
    config = HistoryConfig(holdout_share=0.1, min_holdout=30)
    assert [heldout_count(n, config) for n in (0, 1, 7, 60, 400)] == [0, 0, 3, 30, 40]  # never more than half


# --- a repository with a history ----------------------------------------------------------------------

def _module(name: str, words: list[str]) -> str:
    """A module of five documented functions, each distinct from every other module's (no near-duplicates)."""
    out = [f'"""The {name} module: {words[0]} and {words[1]} helpers."""\n']
    for i, word in enumerate(words):
        out.append(f'''

def {word}_{name}(value, limit={i + 2}):
    """Handle the {word} step of the {name} for one value, up to a limit."""
    {word}_total = value * {i + 3} + limit
    if {word}_total > limit:
        return {word}_total - limit
    return {word}_total
''')
    return "".join(out)


WORDS = {"engine": ["start", "stop", "status", "restart", "probe"], "router": ["match", "compile", "add", "remove", "resolve"],
         "store": ["open", "close", "flush", "read", "write"]}
FILES = {**FIXTURE_FILES, **{f"app/{name}.py": _module(name, words) for name, words in WORDS.items()}}


def _change(root: Path, path: str, function: str, line: str) -> None:
    """Add ``line`` as the first statement after ``function``'s docstring."""
    file = root / path
    lines = file.read_text().split("\n")
    at = next(i for i, text in enumerate(lines) if text.startswith(f"def {function}(")) + 2
    lines.insert(at, f"    {line}")
    file.write_text("\n".join(lines))


# (message, [(path, function, added line)]), oldest first; the expected outcome of each
COMMITS = [
    ("init", [], "too_short"),
    ("Retry the engine start when the socket is busy", [("app/engine.py", "start_engine", "retries_left = limit * 2  # socket busy")], "kept"),
    ("Merge pull request #4 from someone/feature", [("app/router.py", "match_router", "merged_prefix = value or limit")], "merge"),
    ("bump version to 0.2.0", [("app/store.py", "open_store", "opened_version = (0, 2, 0)")], "version_bump"),
    ("fix typo", [("app/store.py", "read_store", "read_spelling_fixed = True")], "typo"),
    ("Route requests by their longest matching prefix (#12)\n\nSigned-off-by: Jane Doe <jane@example.com>",
     [("app/router.py", "resolve_router", "longest_prefix = max(value, limit)")], "kept"),
    ("Store values under a namespaced key for ann.lee@example.com", [("app/store.py", "write_store", "namespaced_key = f'ns:{value}'")], "kept"),
    (f"Authenticate the store client with {TOKEN} from the vault", [("app/store.py", "flush_store", "client_authenticated = value is not None")], "secret"),
    ("Log every call in the engine module", [("app/engine.py", f"{w}_engine", f"calls_logged_{w} = value + {i}") for i, w in enumerate(WORDS["engine"])],
     "too_many_definitions"),
    ("Cache compiled route patterns between requests", [("app/router.py", "compile_router", "pattern_cache = {value: limit}")], "kept"),
    ("Flush the store to disk before closing it", [("app/store.py", "close_store", "flushed_before_close = bool(value)")], "kept"),
    ("Count engine restarts in the status report", [("app/engine.py", "status_engine", "restart_count = value // limit")], "kept"),
    ("Reject empty route names with a clear error", [("app/router.py", "add_router", "empty_name_rejected = not value")], "kept"),
]
KEPT = [(m, changes) for m, changes, outcome in COMMITS if outcome == "kept"]
CLEANED = {"Route requests by their longest matching prefix (#12)\n\nSigned-off-by: Jane Doe <jane@example.com>":
           "Route requests by their longest matching prefix",
           "Store values under a namespaced key for ann.lee@example.com": "Store values under a namespaced key"}


def _git(root: Path, *args: str, day: int = 0) -> None:
    date = f"2024-01-{day + 1:02d}T12:00:00+00:00"
    env = {**os.environ, "GIT_AUTHOR_NAME": "Jane Doe", "GIT_AUTHOR_EMAIL": "jane@example.com", "GIT_COMMITTER_NAME": "Jane Doe",
           "GIT_COMMITTER_EMAIL": "jane@example.com", "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    subprocess.run(["git", "-C", str(root), *args], check=True, env=env, capture_output=True)


def make_history_repo(root: Path) -> Path:
    write_files(root, FILES)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    for day, (message, changes, _) in enumerate(COMMITS):
        for path, function, line in changes:
            _change(root, path, function, line)
        _git(root, "add", "-A", day=day)
        _git(root, "commit", "-q", "--allow-empty", "-m", message, day=day)
    return root


def _build(repo: Path, out: Path, tiny_model: str, *extra: str) -> dict:
    from pipeline.build import build

    return build(repo, out, load_recipe("smoke", [f"train.base_model={tiny_model}", "train.batch_size=8", "evaluate.mteb=false", *extra]))


@pytest.fixture(scope="module")
def history_run(tmp_path_factory, tiny_model) -> tuple[Path, RunDir]:
    root = tmp_path_factory.mktemp("history")
    repo = make_history_repo(root / "repo")
    _build(repo, root / "run", tiny_model)
    return repo, RunDir(root / "run")


def _stats(run: RunDir) -> dict:
    return json.loads((run.stats / "history.json").read_text())


def _heldout(run: RunDir) -> list[dict]:
    return [json.loads(line) for line in (run.root / "history" / "heldout.jsonl").read_text().splitlines()]


def test_every_drop_is_counted_under_its_reason(history_run):
    _, run = history_run
    stats = _stats(run)
    outcomes = [outcome for _, _, outcome in COMMITS]
    assert stats["commits_read"] == len(COMMITS)
    for reason in set(outcomes) - {"kept"}:
        assert stats[f"dropped_{reason}"] == outcomes.count(reason), reason
    assert stats["kept"] == len(KEPT) == stats["train_commits"] + stats["heldout_commits"]
    assert stats["kept"] + sum(v for k, v in stats.items() if k.startswith("dropped_")) == stats["commits_read"]
    card = (run.dataset / "README.md").read_text()
    assert "## Commit history" in card and "| history | too_many_definitions | 1 |" in card and "| history | secret | 1 |" in card
    manifest = run.read_manifest()
    assert manifest["history"]["commits_read"] == len(COMMITS) and manifest["timings"]["build"]["history"] >= 0


def test_held_out_commits_are_the_newest_and_their_messages_are_cleaned(history_run):
    _, run = history_run
    heldout = _heldout(run)
    n = heldout_count(len(KEPT), HistoryConfig())
    assert len(heldout) == n == 3
    assert [h["query"] for h in heldout] == [m for m, _ in KEPT[::-1][:n]]  # newest first
    newest = {(p, f) for _, changes in KEPT[-n:] for p, f, _ in changes}
    assert {(e["path"], e["symbol"]) for h in heldout for e in h["relevant"]} == newest
    from pipeline.dataset import load_pairs

    pairs = load_pairs(run)
    anchors = {p["anchor"] for split in pairs for p in pairs[split] if p["pair_type"] == "commit_definition"}
    assert anchors and not anchors & {h["query"] for h in heldout}  # held out of every pair
    assert anchors <= {CLEANED.get(m, m) for m, _ in KEPT[:-n]}
    assert CLEANED[KEPT[1][0]] in anchors and not any("@" in a or "#" in a or "Signed-off" in a for a in anchors)


def test_commit_pairs_point_at_the_touched_definitions_and_follow_the_split(history_run):
    from pipeline.common import file_of
    from pipeline.dataset import load_corpus, load_pairs

    _, run = history_run
    corpus = list(load_corpus(run))
    held_files = {file_of(r["path"]) for r in corpus if r["split"] == "holdout"}
    first = {}
    for r in corpus:
        first.setdefault((r["path"], r["symbol"]), r["id"])
    expected = {CLEANED.get(m, m): {first[(p, f)] for p, f, _ in changes} for m, changes in KEPT}
    pairs = load_pairs(run)
    found = 0
    for split in ("train", "holdout"):
        for p in pairs[split]:
            if p["pair_type"] != "commit_definition":
                continue
            found += 1
            assert p["positive_chunk_id"] in expected[p["anchor"]], p["anchor"]  # the definition the commit changed
            assert p["anchor_kind"] == "commit" and p["kind"] == "code"
            assert (file_of(p["path"]) in held_files) == (split == "holdout")  # with its positive's file, both ways
    assert found > 0
    assert not [p for p in pairs["train"] if file_of(p["path"]) in held_files]  # no holdout file's definition is trained on


def test_the_planted_token_is_nowhere_in_the_run(history_run):
    _, run = history_run
    for path in run.root.rglob("*"):
        assert not path.is_file() or TOKEN.encode() not in path.read_bytes(), path
        assert not path.is_file() or TOKEN[4:20].encode() not in path.read_bytes(), path


def test_history_pairs_switch_off(history_run, tiny_model, tmp_path):
    from pipeline.dataset import load_pairs

    repo, _ = history_run
    _build(repo, tmp_path / "off", tiny_model, "history.pairs=false")
    pairs = load_pairs(RunDir(tmp_path / "off"))
    assert not [p for s in pairs for p in pairs[s] if p["pair_type"] == "commit_definition"]
    assert len(_heldout(RunDir(tmp_path / "off"))) == 3  # the yardstick stays


def test_a_folder_outside_git_and_a_shallow_clone_build(history_run, tiny_model, tmp_path):
    repo, _ = history_run
    plain = tmp_path / "plain"
    shutil.copytree(repo, plain, ignore=shutil.ignore_patterns(".git"))
    _build(plain, tmp_path / "plain-run", tiny_model)
    stats = _stats(RunDir(tmp_path / "plain-run"))
    assert stats["commits_read"] == 0 and RunDir(tmp_path / "plain-run").read_manifest()["history"]["reason"] == "not a git repository"
    assert _heldout(RunDir(tmp_path / "plain-run")) == []

    shallow = tmp_path / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(shallow)], check=True, capture_output=True)
    _build(shallow, tmp_path / "shallow-run", tiny_model)
    stats = _stats(RunDir(tmp_path / "shallow-run"))
    assert RunDir(tmp_path / "shallow-run").read_manifest()["history"]["reason"] == "shallow clone: 1 commit(s)"
    assert all(isinstance(n, int) for n in stats.values()), stats  # counts only: the notebook and the card tabulate them
    assert stats["commits_read"] == 1 and stats["dropped_shallow_boundary"] == 1 and stats["kept"] == 0


# --- the history yardstick in evaluate, and as drafts ------------------------------------------------------

def test_evaluate_scores_the_held_out_commits(history_run, tmp_path):
    from pipeline.console import summary
    from pipeline.evaluation.evaluate import evaluate
    from pipeline.training.train import train

    _, built = history_run
    run = RunDir(tmp_path / "run")
    shutil.copytree(built.root, run.root)
    recipe = recipe_from_dict(run.read_recipe().to_dict(), ["train.max_steps=2"])
    run.config.write_text(recipe.to_yaml())
    train(run.root, recipe)
    metrics = evaluate(run.root)
    h = json.loads(run.metrics.read_text())["history"]
    assert h["n"] == 3 and h["corpus"] == run.read_manifest()["counts"]["chunks"]
    for system in ("base", "tuned", "bm25", "hybrid"):
        assert set(h[system]) == {"ndcg@10", "mrr@10", "recall@1", "recall@5", "recall@10"}
    assert h["delta_ci"][0] <= h["delta"] <= h["delta_ci"][1]
    assert [p["query"] for p in h["per_question"]] == [q["query"] for q in _heldout(run)]
    assert "## History yardstick" in run.report.read_text()
    assert any(line.startswith("history") and "(3 commits)" in line for line in summary(metrics, str(run.root)))

    from pipeline.evaluation.drafts import draft_questions

    drafted = draft_questions(run.root)
    drafts = [json.loads(line) for line in (run.root / "questions.drafts.jsonl").read_text().splitlines()]
    assert drafted["by_source"]["history"] == 3
    assert {d["query"] for d in drafts if d["source"] == "history"} == {q["query"] for q in _heldout(run)}


def test_a_run_without_held_out_commits_says_why(built_run):
    from pipeline.evaluation.questions import heldout_questions

    questions, why = heldout_questions(built_run, [])
    assert questions == [] and "no held-out commits" in why
    assert json.loads((built_run / "stats" / "history.json").read_text())["dropped_too_short"] == 1  # its one commit: "init"
