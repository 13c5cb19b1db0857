"""pipeline.publishing.publish and pipeline.publishing.hub: publish and pull, against a local stand-in of the Hub (tests/hub_standin.py).

The real Hub is out of reach, so every command that talks to "the Hub" runs in a fresh process with
HF_ENDPOINT pointing at the stand-in (huggingface_hub reads it at import) and HF_HUB_DISABLE_XET=1
(plain HTTP + LFS uploads). Commands that must send nothing run in-process too, with sockets blocked.
One real run is built per module (tiny model, smoke recipe) and copied per test. These tests do not
replace one real push: see the publish section of the README.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hub_standin import HubStandin
from support import FIXTURE_FILES, git_init, write_files

from pipeline.cli import main
from pipeline.publishing.gate import MARKERS
from pipeline.rundir import RunDir, sha256_file, write_json

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "hf_TestOnlyTokenQ7vX2mLp9RzK4wYb8NcJd"  # a made-up token the stand-in accepts
MODEL_REPO, DATASET_REPO = "acme/demo-model", "acme/demo-data"
AWS_KEY = "AKIAQ4JZ7XK2M5PB6NWT"
RUNNER = "import json, sys\nfrom pipeline.cli import main\nprint('exit codes:', json.dumps([main(a) for a in json.loads(sys.argv[1])]))\n"


# --- fixtures: one built run per module, a stand-in Hub per test ---------------------------------------

def write_governance(run: RunDir, failed: str | None = None) -> None:
    """A gate result as quality/conftest.py writes it, with the run's current hashes."""
    manifest = run.read_manifest()
    checks = [{"check": f"test_{m}", "marker": m, "value": 1, "limit": ">= 1", "passed": m != failed,
               "message": f"{m} is below its limit (value 0.01, limit 0.05)" if m == failed else ""} for m in MARKERS]
    write_json(run.governance, {"run": str(run.root), "created": "2026-01-01T00:00:00+00:00", "passed": failed is None,
                                "complete": True, "markers_run": list(MARKERS), "pytest_exit_code": 0 if failed is None else 1,
                                "dataset_hash": manifest["dataset_hash"], "model_hash": run.model_hash(), "checks": checks})


@pytest.fixture(scope="module")
def built_run(tiny_model, tmp_path_factory) -> Path:
    from pipeline.build import build
    from pipeline.config import load_recipe
    from pipeline.evaluation.evaluate import evaluate
    from pipeline.training.train import train

    where = tmp_path_factory.mktemp("publish")
    repo = write_files(where / "repo", FIXTURE_FILES)
    git_init(repo)
    # publish needs a complete run, not a good one: few steps, and the first 40 STS-B test pairs
    sts = where / "sts.tsv"
    sts.write_text("".join((ROOT / "pipeline" / "data" / "stsb" / "stsb_test.tsv").read_text().splitlines(keepends=True)[:41]))
    recipe = load_recipe("smoke", [f"train.base_model={tiny_model}", "evaluate.mteb=false", "train.max_steps=4",
                                   f"evaluate.sts={sts}", "evaluate.domain_sts_pairs=20", "evaluate.examples=1"])
    out = tmp_path_factory.mktemp("runs") / "demo"
    build(repo, out, recipe)
    train(out, recipe)
    evaluate(out)
    write_governance(RunDir(out))
    return out


def copy_run(built_run: Path, where: Path) -> RunDir:
    shutil.copytree(built_run, where / "runs" / "demo")
    return RunDir(where / "runs" / "demo")


@pytest.fixture
def run(built_run, tmp_path) -> RunDir:
    return copy_run(built_run, tmp_path)


@pytest.fixture
def hub():
    with HubStandin(tokens={TOKEN}) as standin:
        yield standin


@pytest.fixture
def no_network(monkeypatch) -> list:
    """Every attempt to open a socket connection, recorded and refused."""
    attempts: list = []

    def refuse(self, address, *args):
        attempts.append(address)
        raise OSError(f"network disabled in this test (tried {address})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


def hub_env(endpoint: str, home: Path, token: str | None = TOKEN) -> dict:
    """The environment of a command that talks to the stand-in: online, no stored login, plain HTTP uploads."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    env |= {"HF_ENDPOINT": endpoint, "HF_HUB_DISABLE_XET": "1", "HF_HOME": str(home), "HF_TOKEN_PATH": str(home / "token"),
            "HF_HUB_DISABLE_PROGRESS_BARS": "1", "PYTHONPATH": str(ROOT)}
    if token:
        env["HF_TOKEN"] = token
    return env


def cli(commands: list[list[str]], env: dict) -> tuple[list[int], str, str]:
    """Run repotune commands one after another in one fresh process (huggingface_hub reads HF_ENDPOINT at
    import, and one import of the stack costs seconds); return their exit codes, stdout and stderr."""
    proc = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(commands)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=240)
    last = [line for line in proc.stdout.splitlines() if line.startswith("exit codes:")]
    assert last, f"the commands crashed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return json.loads(last[-1][len("exit codes:"):]), proc.stdout, proc.stderr


def publish_args(run: RunDir, *extra: str) -> list[str]:
    return ["publish", str(run.root), "--model-repo", MODEL_REPO, "--dataset-repo", DATASET_REPO, *extra]


def files_holding(root: Path, needle: str) -> list[str]:
    return [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


# --- refused: nothing is sent --------------------------------------------------------------------------

def refused(run: RunDir, capsys, no_network, *extra: str) -> str:
    code = main(publish_args(run, *extra))
    err = capsys.readouterr().err
    assert code == 2, err
    assert no_network == [], "a refused publish opened a connection"
    return err


def test_refuses_without_a_gate_result(run, capsys, no_network):
    run.governance.unlink()
    err = refused(run, capsys, no_network)
    assert "governance.json is missing" in err and f"repotune gate {run.root}" in err
    assert not run.publish.exists(), "nothing is staged before the gate check"


def test_refuses_a_failed_gate_naming_the_checks(run, capsys, no_network):
    write_governance(run, failed="overfitting")
    err = refused(run, capsys, no_network)
    assert "did not pass" in err and "test_overfitting [overfitting]" in err and "below its limit" in err
    assert "test_sts" not in err  # only the failing checks are named


def _retrained(run: RunDir) -> None:
    with open(run.model / "model.safetensors", "ab") as f:  # other weights
        f.write(b"\0")


def test_refuses_a_stale_gate(run, capsys, no_network):
    _retrained(run)  # retrained and measured again, but not gated again
    metrics = json.loads(run.metrics.read_text())
    write_json(run.metrics, metrics | {"model_hash": run.model_hash()})
    err = refused(run, capsys, no_network)
    assert "stale" in err and "the model changed" in err and "repotune gate" in err


def test_refuses_a_model_trained_on_another_dataset(run, capsys, no_network):
    """A rebuilt run directory: the dataset moved on, the model and the gate result are the old dataset's."""
    run.update_manifest(dataset_hash="0" * 64)
    err = refused(run, capsys, no_network)
    assert "nothing is published" in err and "was trained on dataset" in err
    assert f"repotune train {run.root} --fresh" in err and len(err.strip().splitlines()) == 1


def test_refuses_metrics_that_measured_another_model(run, capsys, no_network):
    _retrained(run)
    err = refused(run, capsys, no_network)
    assert "measured another model" in err and f"repotune evaluate {run.root}" in err


def test_refuses_a_secret_in_the_model_card(run, capsys, no_network):
    card = run.model / "README.md"
    text = card.read_text()
    assert "\n# " in text
    card.write_text(text.replace("\n# ", f"\nDeploy with aws_access_key_id = {AWS_KEY}\n\n# ", 1))  # in the card's body
    err = refused(run, capsys, no_network)
    assert "aws_access_key in publish/model/README.md line" in err and "Nothing was sent" in err
    assert AWS_KEY not in err


def test_refuses_a_secret_in_a_dataset_row(run, capsys, no_network):
    from datasets import load_from_disk

    github = "ghp_" + "k3Jq9ZxW7mT2vB8nR4pL6yH1cF5dG0sA2eUi"
    corpus = load_from_disk(str(run.corpus))
    planted = corpus.map(lambda row, i: {"text": row["text"] + (f"\ntoken = {github}" if i == 0 else "")}, with_indices=True)
    planted.save_to_disk(str(run.root / "planted"))
    shutil.rmtree(run.corpus)
    (run.root / "planted").rename(run.corpus)
    err = refused(run, capsys, no_network)
    assert "publish/dataset/corpus/data-00000-of-00001.arrow row 0 column text" in err
    assert github not in err


def test_refuses_without_a_token_and_says_how_to_set_one(run, capsys, no_network, monkeypatch, tmp_path):
    import huggingface_hub.constants

    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    err = refused(run, capsys, no_network)
    assert "no Hugging Face token" in err and "hf auth login" in err and "HF_TOKEN" in err and "Colab" in err


def test_dry_run_writes_the_exact_upload_folders_and_plan(run, capsys, no_network):
    # mteb results travel with the model; their hex revisions are identifiers, not secrets (as for the gate)
    mteb = run.model / "mteb" / "results" / "repotune__tuned" / "256f57a5e2f8" / "RepotuneHoldoutRetrieval.json"
    write_files(mteb.parent, {mteb.name: json.dumps({"dataset_revision": "64ec8086b4750c71", "scores": {}}, indent=4)})
    assert main(publish_args(run, "--dry-run")) == 0
    assert no_network == []
    out = capsys.readouterr().out
    assert "nothing was sent" in out
    plan = json.loads((run.publish / "plan.json").read_text())
    assert plan["dry_run"] is True
    by_type = {r["repo_type"]: r for r in plan["repos"]}
    assert {by_type["model"]["repo_id"], by_type["dataset"]["repo_id"]} == {MODEL_REPO, DATASET_REPO}
    assert all(r["private"] for r in plan["repos"]) and all(r["commit_message"] for r in plan["repos"])
    for r in plan["repos"]:  # the plan lists exactly what is staged, with sizes
        folder = run.root / r["folder"]
        staged = {p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*") if p.is_file()}
        assert {f["path"]: f["size"] for f in r["files"]} == staged
    model_files = {f["path"] for f in by_type["model"]["files"]}
    assert {"model.safetensors", "modules.json", "README.md", "report.md", "plots/retrieval.png",
            "mteb/results/repotune__tuned/256f57a5e2f8/RepotuneHoldoutRetrieval.json"} <= model_files
    assert {"README.md", "pairs/train/data-00000-of-00001.arrow", "corpus/data-00000-of-00001.arrow"} <= {f["path"] for f in by_type["dataset"]["files"]}
    assert sha256_file(run.publish / "model" / "model.safetensors") == sha256_file(run.model / "model.safetensors")
    card = (run.publish / "model" / "README.md").read_text()
    assert "## repotune governance" in card and "| test_overfitting | overfitting |" in card
    assert f"datasets/{DATASET_REPO}" in card and f'SentenceTransformer("{MODEL_REPO}"' in card
    assert "sentence_transformers_model_id" not in card  # sentence-transformers' own snippet names the repo too
    assert f'load_dataset("{DATASET_REPO}", "pairs"' in (run.publish / "dataset" / "README.md").read_text()
    assert "## repotune governance" not in (run.model / "README.md").read_text(), "the run's own card is left alone"
    assert plan["secret_scan"]["rows"] > 0 and "publish/model/model.safetensors" in plan["secret_scan"]["binary_not_scanned"]


@pytest.fixture(scope="module")
def live_refusals(built_run, tmp_path_factory):
    """In one process that *can* reach a stand-in: a dry run, a stale gate, then a wrong token.

    The first two must send nothing and the third may only ask who the token belongs to, so the
    stand-in's whole log must be that one question.
    """
    where = tmp_path_factory.mktemp("live")
    good, stale, other = (copy_run(built_run, where / name) for name in ("dry", "stale", "token"))
    stale.update_manifest(dataset_hash="0" * 64)
    wrong = "hf_WrongTokenZ8kQ3vN6xP1mR5tY9wB2cL"
    with HubStandin(tokens={TOKEN}) as standin:
        codes, out, err = cli([publish_args(good, "--dry-run"), publish_args(stale), publish_args(other)],
                              hub_env(standin.url, where / "hf", token=wrong))
        yield {"hub": standin, "codes": codes, "out": out, "err": err, "wrong": wrong, "runs": (good, stale, other)}


def test_dry_run_and_a_stale_gate_send_nothing_to_a_live_hub(live_refusals):
    assert live_refusals["codes"][:2] == [0, 2], live_refusals["err"]
    assert "nothing was sent" in live_refusals["out"] and "stale" in live_refusals["err"]
    assert [r.path for r in live_refusals["hub"].requests if r.path != "/api/agent-harnesses"] == ["/api/whoami-v2"]
    assert (live_refusals["runs"][0].publish / "plan.json").is_file()


def test_an_invalid_token_is_refused_with_how_to_fix_it(live_refusals):
    wrong, err = live_refusals["wrong"], live_refusals["err"]
    assert live_refusals["codes"][2] == 2
    assert "rejected the token" in err and "hf auth login" in err and "HF_TOKEN" in err
    assert wrong not in live_refusals["out"] + err
    assert all(files_holding(run.root, wrong) == [] for run in live_refusals["runs"])
    assert live_refusals["hub"].repos == {}


# --- a good publish, twice; then pull and search ---------------------------------------------------------

@pytest.fixture(scope="module")
def published(built_run, tmp_path_factory):
    """A copy of the run published twice to a fresh stand-in (the second push must change nothing), then
    model and dataset pulled back, all in one process."""
    where = tmp_path_factory.mktemp("published")
    run = copy_run(built_run, where)
    model_dir, data_dir = where / "pulled" / "model", where / "pulled" / "data"
    with HubStandin(tokens={TOKEN}) as standin:
        codes, out, err = cli([publish_args(run), publish_args(run),
                               ["pull", MODEL_REPO, "--out", str(model_dir), "--revision", "main"],
                               ["pull", DATASET_REPO, "--dataset", "--out", str(data_dir)]], hub_env(standin.url, where / "hf"))
        yield {"hub": standin, "run": run, "codes": codes, "out": out, "err": err, "pulled": (model_dir, data_dir)}


def test_publish_creates_private_repos_with_the_expected_files(published):
    hub, run = published["hub"], published["run"]
    assert published["codes"][:2] == [0, 0], published["err"]
    model, data = hub.repo("model", MODEL_REPO), hub.repo("dataset", DATASET_REPO)
    assert model.private and data.private
    files = model.resolve("main").files
    assert {"model.safetensors", "modules.json", "README.md", "report.md", "config_sentence_transformers.json",
            "1_Pooling/config.json", "plots/retrieval.png"} <= set(files)
    assert files["model.safetensors"].lfs and files["model.safetensors"].data == (run.model / "model.safetensors").read_bytes()
    assert "## repotune governance" in files["README.md"].data.decode()
    dfiles = data.resolve("main").files
    assert {"README.md", "pairs/dataset_dict.json", "pairs/train/data-00000-of-00001.arrow",
            "pairs/holdout/data-00000-of-00001.arrow", "corpus/data-00000-of-00001.arrow"} <= set(dfiles)
    assert dfiles["corpus/data-00000-of-00001.arrow"].lfs
    assert "configs:" in dfiles["README.md"].data.decode() and "## Use it from the Hub" in dfiles["README.md"].data.decode()


def test_publish_prints_how_to_pull_pinned_to_the_new_commits(published):
    hub, out = published["hub"], published["out"]
    model_sha, data_sha = hub.repo("model", MODEL_REPO).refs["main"], hub.repo("dataset", DATASET_REPO).refs["main"]
    assert f'SentenceTransformer("{MODEL_REPO}", revision="{model_sha}")' in out
    assert f'load_dataset("{DATASET_REPO}", "pairs", revision="{data_sha}")' in out
    result = json.loads((published["run"].publish / "result.json").read_text())
    assert result["model"]["sha"] == model_sha and result["dataset"]["sha"] == data_sha


def test_a_second_publish_of_the_same_run_makes_no_commit(published):
    hub, out = published["hub"], published["out"]
    for repo in (hub.repo("model", MODEL_REPO), hub.repo("dataset", DATASET_REPO)):
        assert len(repo.pushed()) == 1, [c.summary for c in repo.pushed()]
    assert sum(1 for r in hub.requests if r.method == "POST" and "/commit/" in r.path) == 2
    assert f"unchanged model {MODEL_REPO}" in out and f"unchanged dataset {DATASET_REPO}" in out


def test_the_token_never_leaves_the_request_headers(published):
    assert TOKEN not in published["out"] and TOKEN not in published["err"]
    assert files_holding(published["run"].root, TOKEN) == []
    # and it went where it is needed: every API call carried it
    assert all(r.authorized for r in published["hub"].requests if r.path.startswith("/api/") and "agent-harnesses" not in r.path)


def test_pull_then_search_offline(published, capsys):
    hub, out = published["hub"], published["out"]
    assert published["codes"][2:] == [0, 0], published["err"]
    model_sha, data_sha = hub.repo("model", MODEL_REPO).refs["main"], hub.repo("dataset", DATASET_REPO).refs["main"]
    assert f"pulled model {MODEL_REPO} at {model_sha}" in out and f"pulled dataset {DATASET_REPO} at {data_sha}" in out
    model_dir, data_dir = published["pulled"]
    assert sha256_file(model_dir / "model.safetensors") == sha256_file(published["run"].model / "model.safetensors")
    # offline, in this process: the pulled model over the pulled dataset's corpus
    assert main(["search", str(model_dir), "register an item with the manager", "--corpus", str(data_dir), "-k", "3"]) == 0
    shown = capsys.readouterr().out
    assert "3 best for" in shown and shown.count(".md:") + shown.count(".py:") == 3


def test_search_a_run_and_a_plain_folder(run, capsys):
    assert main(["search", str(run.model), "load the cache settings", "-k", "2"]) == 0  # the run's own corpus
    assert "chunk corpus" in capsys.readouterr().out
    folder = write_files(run.root.parent / "plain", {"notes.md": "# Notes\n\nThe cache is loaded from disk at start.\n"})
    assert main(["search", str(run.model), "load the cache", "--corpus", str(folder), "-k", "1"]) == 0
    assert "notes.md:1-3" in capsys.readouterr().out


# --- what a push sends: only what differs from the remote -----------------------------------------------

class FakeApi:
    """list_repo_tree and create_commit only: the remote as RepoFile entries, commits recorded."""

    def __init__(self, remote: dict[str, bytes], lfs: set[str]):
        from hub_standin import Blob
        from huggingface_hub.hf_api import RepoFile

        self.tree = [RepoFile(path=p, size=len(data), oid=Blob(data, p in lfs).oid,
                              **({"lfs": {"oid": Blob(data, True).sha256, "size": len(data), "pointerSize": 134}} if p in lfs else {}))
                     for p, data in remote.items()]
        self.commits: list[dict] = []

    def list_repo_tree(self, *args, **kwargs):
        return iter(self.tree)

    def create_commit(self, repo_id, operations, **kwargs):
        from huggingface_hub import CommitInfo

        self.commits.append({"operations": operations, **kwargs})
        return CommitInfo(commit_url=f"https://huggingface.co/{repo_id}/commit/{'b' * 40}", commit_message="m", commit_description="",
                          oid="b" * 40, pr_url=None)


def test_push_sends_only_changed_files_and_removes_stale_ones_from_its_folders(tmp_path):
    from types import SimpleNamespace

    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    from pipeline.publishing.hub import Target, push

    files = {"README.md": b"# card\n", "model.safetensors": b"\0weights", "plots/loss.png": b"\0png"}
    folder = write_files(tmp_path / "staged", files)
    target = Target("acme/m", "model", folder, True, "msg", "desc")
    info = SimpleNamespace(sha="a" * 40, private=True)
    lfs = {"model.safetensors", "plots/loss.png", "plots/old.png"}

    same = FakeApi(dict(files), lfs)
    assert push(same, target, info, TOKEN, create_pr=False)["changed"] is False
    assert same.commits == []  # nothing differs: no commit at all

    remote = {**files, "model.safetensors": b"\0older weights", "plots/old.png": b"\0old", "notes.md": b"kept"}
    api = FakeApi(remote, lfs)
    result = push(api, target, info, TOKEN, create_pr=False)
    assert result["changed"] and result["sha"] == "b" * 40
    (commit,) = api.commits
    assert [(type(op), op.path_in_repo) for op in commit["operations"]] == [
        (CommitOperationAdd, "model.safetensors"), (CommitOperationDelete, "plots/old.png")]  # notes.md is not ours
    assert commit["parent_commit"] == "a" * 40  # fails, instead of overwriting, if the remote moved meanwhile


# --- visibility, pull requests, network failures ----------------------------------------------

def test_public_creates_public_repos_and_create_pr_opens_pull_requests(run, hub, tmp_path):
    codes, out, err = cli([publish_args(run, "--public", "--create-pr"), publish_args(run)], hub_env(hub.url, tmp_path / "hf"))
    assert codes == [0, 2], err
    for repo in (hub.repo("model", MODEL_REPO), hub.repo("dataset", DATASET_REPO)):
        assert repo.private is False
        assert [c.pr for c in repo.pushed()] == [1] and repo.resolve("main").parent is None  # main untouched
    assert "discussions/1" in out and "pull requests" in out
    # a later private publish refuses to write into the public repos
    assert "already exists and is public" in err and "--public" in err


def test_an_unreachable_hub_fails_with_a_clear_message(run, capsys, monkeypatch):
    import huggingface_hub.constants as hf

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # in-process, so the constants huggingface_hub read at import are set by hand: online, that port, a token
    monkeypatch.setattr(hf, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hf, "ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert main(publish_args(run)) == 2
    captured = capsys.readouterr()
    assert "could not reach the Hub" in captured.err and "run the same command again" in captured.err
    assert TOKEN not in captured.out + captured.err


def _snippets(card: str) -> dict[str, str]:
    """The card's code blocks under each **library** heading of "Use it"."""
    import re

    return {m.group(1): m.group(2) for m in re.finditer(r"\*\*([\w -]+)\*\*\n\n```python\n(.*?)\n```", card, re.S)}


@pytest.fixture(scope="module")
def staged(built_run, tmp_path_factory):
    """A dry-run publish of the fixture run: the staged folders, as they would be uploaded."""
    run = copy_run(built_run, tmp_path_factory.mktemp("staged"))
    assert main(publish_args(run, "--dry-run")) == 0
    return run


def test_the_staged_cards_hold_no_local_path_and_name_the_scanners(staged):
    for card in (staged.publish / "model" / "README.md", staged.publish / "dataset" / "README.md"):
        text = card.read_text()
        for local in (str(staged.root), str(staged.root.parent), "/tmp/", "/content/drive", str(Path.home()) + "/"):
            assert local not in text, f"{card.name} publishes the local path {local}"
    dataset_card = (staged.publish / "dataset" / "README.md").read_text()
    assert "Kingfisher" in dataset_card and "detect-secrets" in dataset_card and "repotune's own rules" in dataset_card


def test_the_cards_sentence_transformers_snippet_runs_against_the_staged_model(staged, capsys):
    """The card's snippet, run as a user would run it (the model id pointing at the staged folder): it embeds documents
    under the header search used, and finds the configuration document for the configuration question."""
    card = (staged.publish / "model" / "README.md").read_text()
    snippets = _snippets(card)
    assert set(snippets) == {"sentence-transformers", "LangChain", "LlamaIndex"}
    assert 'return f"{path} {symbol}".rstrip() + "\\n" + text' in snippets["sentence-transformers"]  # the header, as search
    exec(snippets["sentence-transformers"].replace(f'"{MODEL_REPO}"', repr(str(staged.publish / "model"))), {})
    assert capsys.readouterr().out.strip().startswith(("app/config.py", "docs/configuration.md"))


@pytest.mark.parametrize(("library", "module"), [("LangChain", "langchain_huggingface"),
                                                  ("LlamaIndex", "llama_index.embeddings.huggingface")])
def test_the_cards_rag_snippets_run_against_the_staged_model(staged, library, module):
    """Run where the RAG libraries are installed (`pip install langchain-huggingface llama-index-embeddings-huggingface`,
    ~45 packages, so not in the test extras): the closing note of issue 33 gives the command."""
    pytest.importorskip(module)
    snippet = _snippets((staged.publish / "model" / "README.md").read_text())[library]
    scope: dict = {}
    exec(snippet.replace(f'"{MODEL_REPO}"', repr(str(staged.publish / "model"))), scope)
    assert len(scope["vectors"]) == 2 and len(scope["query"]) == len(scope["vectors"][0])
