"""publish: push a gated run's model and dataset to the Hugging Face Hub (the Hub calls and pull live in hub.py).

``publish`` (the last stage: docs/publishing.md), step by step; nothing is sent before step 5:

1. gate    governance.json exists, passed, and still describes the run's dataset and model (gate.is_current)
2. stage   the exact upload folders, ``publish/model`` (the saved SentenceTransformer + report.md + plots/,
           its card enriched with the gate's table and the dataset link) and ``publish/dataset`` (pairs,
           corpus, card with a usage snippet)
3. scan    every text file and every dataset row staged, once more, with SecretScanner (and every file
           for the token itself); a finding aborts with file and type, never the value
4. plan    ``publish/plan.json``: repos, visibility, files with sizes, commit messages (``--dry-run`` stops here)
5. token   HF_TOKEN, the stored login, or the Colab secret (huggingface_hub.get_token), checked with whoami;
           never printed, logged or written
6. repos   created private unless ``--public``; an existing public repo is refused without ``--public``
7. push    one commit per repo (dataset first), with huggingface_hub's own create_commit, after comparing the
           staged files with the remote tree: nothing changed, no commit
8. result  ``publish/result.json`` with the commit shas, and how to pull and use them

Steps 5-7 and ``pull`` talk to the Hub: they live in hub.py.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from ..rundir import RunDir, read_json, write_json
from .gate import is_current, load_result
from .hub import (
    PublishError,
    Target,
    check_repo_id,
    check_token,
    ensure_repo,
    hub_url,
    push,
    quiet_http_log,
    resolve_token,
)

log = logging.getLogger("repotune")

# Scanned as text whatever their content; any other file is scanned when it decodes as UTF-8 without NUL bytes.
GOVERNANCE_MARKER = "## repotune governance"
DATASET_USAGE_MARKER = "## Use it from the Hub"


# --- 1. gate ------------------------------------------------------------------------------------------

def check_gate(run: RunDir) -> dict:
    """The run's gate result, if it passed and still matches the run; otherwise PublishError naming the checks."""
    if run.manifest.is_file() and (stale := run.provenance_problem()) is not None:
        raise PublishError(f"nothing is published: {stale}, then `repotune gate {run.root}`")
    if not run.governance.is_file():
        raise PublishError(f"{run.governance} is missing: run `repotune gate {run.root}` first; publish ships only a run "
                           "that passed the governance gate")
    try:
        result = load_result(run)
    except ValueError as err:  # a half-written or hand-edited file
        raise PublishError(f"{run.governance} is unreadable ({err}): run `repotune gate {run.root}` again") from err
    failed = [c for c in result.get("checks", []) if not c.get("passed")]
    if failed or not result.get("passed"):
        named = "; ".join(f"{c.get('check')} [{c.get('marker')}]: {c.get('message') or 'failed'}" for c in failed)  # whole: what to do
        raise PublishError(f"the governance gate did not pass for {run.root}: "
                           f"{named or 'no failed check recorded, but passed is false (an incomplete or interrupted gate)'}. "
                           f"Fix the run, then run `repotune gate {run.root}` again")
    ok, reason = is_current(run, result)
    if not ok:
        raise PublishError(f"governance.json in {run.root} is stale or incomplete: {reason}. Run `repotune gate {run.root}` again")
    if not (run.model / "modules.json").is_file():
        raise PublishError(f"no trained model in {run.model}: run `repotune train {run.root}` and the gate first")
    return result


# --- 2. stage -----------------------------------------------------------------------------------------

def _cell(value) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."


SNIPPET_DOCS = ('docs = [document("def load_settings(path):\\n    \\"\\"\\"Read the settings file.\\"\\"\\"", "app/config.py", "load_settings"),\n'
                '        document("Settings are read once at start-up.", "docs/configuration.md", "Configuration > Loading")]')


def usage_snippets(model_repo: str, context: bool) -> dict[str, str]:
    """The model card's snippets, by library: sentence-transformers, LangChain, LlamaIndex. Each embeds documents as
    repotune's search does (``document``: a header line with the path and symbol, then the text, where the model was
    trained so) and queries as they are. tests/publishing/test_publish.py runs them against the staged model."""
    header = ('def document(text, path, symbol=""):  # as repotune embeds a chunk: a header line with its path and symbol\n'
              '    return f"{path} {symbol}".rstrip() + "\\n" + text\n' if context else
              'def document(text, path, symbol=""):  # this model was tuned on chunks as they are, without a header\n'
              '    return text\n')
    query = '"where is the configuration loaded?"'
    loads = {  # each library's loading, then what it does with the documents and a query
        "sentence-transformers": ("from sentence_transformers import SentenceTransformer\n\n"
                                  '# pin a version with revision="<commit sha>": `repotune publish` prints it, the repo\'s history lists it\n'
                                  f'model = SentenceTransformer("{model_repo}", revision="main")',
                                  f"scores = model.similarity(model.encode_query([{query}]), model.encode_document(docs))\n"
                                  "print(docs[int(scores.argmax())])"),
        "LangChain": ("from langchain_huggingface import HuggingFaceEmbeddings\n\n"
                      f'embeddings = HuggingFaceEmbeddings(model_name="{model_repo}", encode_kwargs={{"normalize_embeddings": True}})',
                      "vectors = embeddings.embed_documents(docs)  # into any LangChain vector store, e.g. InMemoryVectorStore\n"
                      f"query = embeddings.embed_query({query})"),
        "LlamaIndex": ("from llama_index.embeddings.huggingface import HuggingFaceEmbedding\n\n"
                       f'embed_model = HuggingFaceEmbedding(model_name="{model_repo}")  # Settings.embed_model = embed_model for an index',
                       f"vectors = embed_model.get_text_embedding_batch(docs)\nquery = embed_model.get_query_embedding({query})"),
    }
    return {library: f"{load}\n\n\n{header}\n\n{SNIPPET_DOCS}\n{use}" for library, (load, use) in loads.items()}


def usage_section(model_repo: str, dataset_repo: str, context: bool) -> list[str]:
    """The card's "Use it": how to embed documents as the search did, and a snippet per library (RAG stacks included)."""
    lines = ["### Use it", "",
             ("Embed each document (a chunk of code or docs) under a header line naming its file's path and its symbol or "
              "section, as repotune's search did when it was measured; queries go in as they are." if context else
              "Embed documents and queries as they are (this model was tuned without a header on its chunks)."), ""]
    for library, code in usage_snippets(model_repo, context).items():
        lines += [f"**{library}**", "", "```python", code, "```", ""]
    lines += ["The pairs it was tuned on:", "", "```python", "from datasets import load_dataset", "",
              f"pairs = load_dataset(\"{dataset_repo}\", \"pairs\", revision=\"main\")  # train and holdout splits", "```", ""]
    return lines


def governance_section(gate: dict, model_repo: str, dataset_repo: str, context: bool = True) -> list[str]:
    """The model card's gate table, data link and usage snippet (markdown lines)."""
    lines = ["", GOVERNANCE_MARKER, "",
             f"Published by `repotune publish` after the governance gate (`pytest -m governance`) passed on the run that "
             f"produced this model ({gate.get('created', 'date unknown')}). Model weights sha256 `{gate.get('model_hash')}`, "
             f"dataset content hash `{gate.get('dataset_hash')}`.", "",
             "| check | marker | value | limit | passed |", "|---|---|---|---|---|"]
    for c in gate.get("checks", []):
        lines.append(f"| {_cell(c.get('check'))} | {_cell(c.get('marker'))} | {_cell(c.get('value'))} | "
                     f"{_cell(c.get('limit'))} | {'yes' if c.get('passed') else 'no'} |")
    lines += ["", "### Training data", "",
              f"Pairs and chunk corpus: [{dataset_repo}]({hub_url(dataset_repo, 'dataset')}) "
              f"(the dataset card carries the same content hash).", "",
              *usage_section(model_repo, dataset_repo, context),
              f"Offline: `repotune pull {model_repo} --out models/{model_repo.split('/')[-1]} --revision <commit sha>`, then "
              f"`repotune search models/{model_repo.split('/')[-1]} \"query\" --corpus PATH`.", ""]
    return lines


def dataset_section(gate: dict, model_repo: str, dataset_repo: str) -> str:
    return "\n".join([
        DATASET_USAGE_MARKER, "",
        f"Content hash `{gate.get('dataset_hash')}`, checked by the repotune governance gate before publishing. "
        f"The model tuned on it: [{model_repo}]({hub_url(model_repo, 'model')}).", "",
        "```python",
        "from datasets import load_dataset",
        "",
        "# pin a version with revision=\"<commit sha>\": `repotune publish` prints it, the repo's history lists it",
        f"pairs = load_dataset(\"{dataset_repo}\", \"pairs\", revision=\"main\")  # splits: train, holdout",
        f"corpus = load_dataset(\"{dataset_repo}\", \"corpus\", split=\"train\", revision=\"main\")",
        "```", "",
        f"Offline: `repotune pull {dataset_repo} --dataset --out data/{dataset_repo.split('/')[-1]}`, then "
        f"`load_dataset(\"data/{dataset_repo.split('/')[-1]}\", \"pairs\")` (the folder's card names the configs).", ""])


def _ignore_for_upload(folder: str, names: list[str]) -> set[str]:
    # hidden files (caches, locks); datasets' cache-*.arrow files, which the card's *.arrow globs would load as data;
    # and save_to_disk's state.json, local cache state whose hex fingerprint reads as a secret to detect-secrets
    return {n for n in names if n.startswith(".") or (n.startswith("cache-") and n.endswith(".arrow")) or n == "state.json"}


def _name_an_unknown_licence(data, manifest: dict) -> None:
    """The Hub asks a card with ``license: other`` for a ``license_name`` (and a link): the source's own terms, which
    `collect.license` names in a rebuild where the repository's licence file is missing or not recognised."""
    if getattr(data, "license", None) == "other":
        data.license_name = "source-repository-terms"
        url = (manifest.get("source") or {}).get("url")
        if url and url.startswith("https://"):
            data.license_link = url


def stage(run: RunDir, gate: dict, model_repo: str, dataset_repo: str) -> tuple[Path, Path]:
    """Write the exact upload folders: ``publish/model`` and ``publish/dataset``."""
    from huggingface_hub import DatasetCard, ModelCard

    from ..evaluation.report import enrich_model_card
    from ..retrieval.search import model_settings

    model_dir, dataset_dir = run.publish / "model", run.publish / "dataset"
    for folder in (model_dir, dataset_dir):
        shutil.rmtree(folder, ignore_errors=True)

    # model: the saved SentenceTransformer (with its card and any mteb results), report.md and plots/
    shutil.copytree(run.model, model_dir, ignore=_ignore_for_upload)
    if run.report.is_file():
        shutil.copy2(run.report, model_dir / "report.md")
    if run.plots.is_dir():
        shutil.copytree(run.plots, model_dir / "plots", ignore=_ignore_for_upload)
    card_path = model_dir / "README.md"
    if not card_path.is_file():  # sentence-transformers always writes one; a hand-made model may not have it
        ModelCard(f"---\nlibrary_name: sentence-transformers\n---\n\n# {model_repo}\n").save(card_path)
    metrics = read_json(run.metrics, f"repotune evaluate {run.root}")
    # enrich_model_card edits <root>/model/README.md: pointed at publish/, it edits the staged copy only
    context = model_settings(run.model)["context"]
    enrich_model_card(RunDir(run.publish), metrics, extra_sections=governance_section(gate, model_repo, dataset_repo, context))
    card = ModelCard.load(card_path)
    card.data.datasets = sorted({*(card.data.datasets or []), dataset_repo})
    _name_an_unknown_licence(card.data, run.read_manifest())
    # the card's own usage snippet names sentence-transformers' placeholder, which its push_to_hub replaces too
    card.text = card.text.replace('"sentence_transformers_model_id"', f'"{model_repo}"')
    card.save(card_path)

    # dataset: pairs and corpus as saved on disk (the card's configs point at their *.arrow files), and the card
    shutil.copytree(run.dataset, dataset_dir, ignore=_ignore_for_upload)
    dcard_path = dataset_dir / "README.md"
    dcard = DatasetCard.load(dcard_path)
    dcard.text = dcard.text.split(DATASET_USAGE_MARKER)[0].rstrip() + "\n\n" + dataset_section(gate, model_repo, dataset_repo)
    _name_an_unknown_licence(dcard.data, run.read_manifest())
    dcard.save(dcard_path)
    return model_dir, dataset_dir


# --- 3. scan ------------------------------------------------------------------------------------------

def scan_staged(folders: list[Path], run: RunDir) -> dict:
    """Scan every staged text file and every string in every dataset row; raise on any finding.

    Arrow files are read through ``datasets`` (their strings are the dataset); other binary files
    (weights, images) are listed as not scanned.
    """
    from datasets import Dataset

    from ..rundir import is_text_file, known_identifiers
    from ..secrets import SecretScanner

    root, allow = run.root, known_identifiers(run.read_manifest(), run.model_hash(), folders)
    found: list[tuple[str, str]] = []  # (type, where)
    summary = {"text_files": 0, "arrow_files": 0, "rows": 0, "binary_not_scanned": []}
    with SecretScanner() as scanner:
        for folder in folders:
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                rel = path.relative_to(root).as_posix()
                if path.suffix == ".arrow":
                    summary["arrow_files"] += 1
                    ds = Dataset.from_file(str(path))
                    columns = [name for name, feature in ds.features.items() if getattr(feature, "dtype", None) in ("string", "large_string")]
                    paths = ds["path"] if "path" in ds.column_names else [rel] * len(ds)
                    for column in columns:
                        for i, text in enumerate(ds[column]):
                            found += [(h.type, f"{rel} row {i} column {column} line {h.line}")
                                      for h in scanner.scan(text or "", paths[i] or rel, allow)]
                    summary["rows"] += len(ds)
                elif is_text_file(path):
                    summary["text_files"] += 1
                    found += [(h.type, f"{rel} line {h.line}") for h in scanner.scan(path.read_text(errors="replace"), rel, allow)]
                else:
                    summary["binary_not_scanned"].append(rel)
    if found:
        listed = "; ".join(f"{t} in {where}" for t, where in found[:20]) + (f"; and {len(found) - 20} more" if len(found) > 20 else "")
        raise PublishError(f"{len(found)} secret finding(s) in what publish would upload: {listed}. Nothing was sent. "
                           "Remove the secret at its source (the repository, then rebuild; or the file in the run), "
                           "then run the gate and publish again")
    return summary


def check_token_absent(folders: list[Path], root: Path, token: str) -> None:
    """The token in use, searched as bytes in every staged file (binary ones too): a leak no detector may name."""
    leaks = [p.relative_to(root).as_posix() for folder in folders for p in sorted(folder.rglob("*"))
             if p.is_file() and token.encode() in p.read_bytes()]
    if leaks:
        raise PublishError(f"the Hugging Face token in use appears in what publish would upload: {', '.join(leaks)}. "
                           "Nothing was sent. Remove it at its source, revoke it at https://huggingface.co/settings/tokens, "
                           "then run the gate and publish again")


# --- 4. plan ------------------------------------------------------------------------------------------

def make_targets(run: RunDir, gate: dict, model_repo: str, dataset_repo: str, model_dir: Path, dataset_dir: Path,
                 public: bool) -> list[Target]:
    """Dataset first: the model card links it, so it must exist when the model appears."""
    n_checks = len(gate.get("checks", []))
    message = f"repotune publish {run.root.name}: model {str(gate.get('model_hash'))[:12]}, dataset {str(gate.get('dataset_hash'))[:12]}"
    description = (f"Governance gate passed ({n_checks} checks, {gate.get('created', 'date unknown')}).\n"
                   f"Model weights sha256: {gate.get('model_hash')}\nDataset content hash: {gate.get('dataset_hash')}\n")
    return [Target(dataset_repo, "dataset", dataset_dir, not public, message, description),
            Target(model_repo, "model", model_dir, not public, message, description)]


def make_plan(run: RunDir, gate: dict, targets: list[Target], scan: dict, create_pr: bool, dry_run: bool) -> dict:
    from huggingface_hub import constants

    repos = []
    for t in targets:
        files = [{"path": rel, "size": path.stat().st_size} for rel, path in t.files().items()]
        repos.append({"repo_id": t.repo_id, "repo_type": t.repo_type, "private": t.private,
                      "folder": t.folder.relative_to(run.root).as_posix(), "url": hub_url(t.repo_id, t.repo_type),
                      "commit_message": t.commit_message, "create_pr": create_pr,
                      "n_files": len(files), "total_bytes": sum(f["size"] for f in files), "files": files})
    operations = [f"create_repo {t.repo_id} (repo_type={t.repo_type}, private={t.private}, exist_ok=True)" for t in targets]
    operations += [f"create_commit {t.repo_id} ({t.repo_type}): the files of {t.folder.relative_to(run.root).as_posix()} that "
                   "differ from the remote, in one commit" + (" opened as a pull request" if create_pr else "") +
                   "; no commit when the remote already holds them all" for t in targets]
    return {"run": str(run.root), "dry_run": dry_run, "endpoint": constants.ENDPOINT,
            "gate": {k: gate.get(k) for k in ("passed", "created", "dataset_hash", "model_hash")},
            "secret_scan": scan, "operations": operations, "repos": repos}


# --- the command --------------------------------------------------------------------------------------

def publish(run_dir: str | Path, model_repo: str, dataset_repo: str, public: bool = False, dry_run: bool = False,
            create_pr: bool = False) -> dict:
    """Gate, stage, scan, plan; then (unless ``dry_run``) push dataset and model. Returns the plan or the result."""
    run = RunDir(run_dir)
    check_repo_id(model_repo, "--model-repo")
    check_repo_id(dataset_repo, "--dataset-repo")
    gate = check_gate(run)  # 1.
    model_dir, dataset_dir = stage(run, gate, model_repo, dataset_repo)  # 2.
    scan = scan_staged([dataset_dir, model_dir], run)  # 3.
    # a dry run looks for no token, so that it sends nothing at all (get_token may exchange an OIDC token)
    token = None if dry_run else resolve_token()
    if token:
        check_token_absent([dataset_dir, model_dir], run.root, token)
    targets = make_targets(run, gate, model_repo, dataset_repo, model_dir, dataset_dir, public)
    plan = make_plan(run, gate, targets, scan, create_pr, dry_run)  # 4.
    write_json(run.publish / "plan.json", plan)
    if dry_run:
        return {"dry_run": True, "plan": str(run.publish / "plan.json"), **plan}

    from huggingface_hub import HfApi

    quiet_http_log()
    api = HfApi(library_name="repotune")
    user = check_token(api, token)  # 5.
    infos = [ensure_repo(api, t, token) for t in targets]  # 6. both repos checked before either is written
    pushed = [push(api, t, info, token, create_pr) for t, info in zip(targets, infos)]  # 7.
    result = {"dry_run": False, "user": user, "create_pr": create_pr, "dataset": pushed[0], "model": pushed[1],
              "gate": plan["gate"]}
    write_json(run.publish / "result.json", result)  # 8.
    return result


def usage_text(result: dict) -> str:
    """How to pull and use what was pushed, pinned to the commits just made (or found unchanged)."""
    m, d = result["model"], result["dataset"]
    lines = []
    for r in (d, m):
        state = "pushed" if r["changed"] else "unchanged"
        where = r["pr_url"] or r["commit_url"] or r["url"]
        lines.append(f"{state} {r['repo_type']} {r['repo_id']} at {r['sha']} ({'private' if r['private'] else 'public'}): {where}")
    lines += ["", "Use them (pinned to these commits):", "",
              "    from sentence_transformers import SentenceTransformer",
              f"    model = SentenceTransformer(\"{m['repo_id']}\", revision=\"{m['sha']}\")",
              "    from datasets import load_dataset",
              f"    pairs = load_dataset(\"{d['repo_id']}\", \"pairs\", revision=\"{d['sha']}\")", "",
              f"Offline: repotune pull {m['repo_id']} --out models/{m['repo_id'].split('/')[-1]} --revision {m['sha']}"]
    if result.get("create_pr"):
        lines.append("These commits are pull requests: merge them on the Hub to publish on main.")
    return "\n".join(lines)


__all__ = ["PublishError", "publish", "usage_text", "check_gate", "stage", "scan_staged"]
