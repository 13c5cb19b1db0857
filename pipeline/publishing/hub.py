"""hub: the Hugging Face Hub side of publish and pull, with huggingface_hub's own API (HfApi).

5. token   HF_TOKEN, the stored login, or the Colab secret (huggingface_hub.get_token), checked with whoami;
           never printed, logged or written
6. repos   created private unless ``--public``; an existing public repo is refused without ``--public``
7. push    one commit per repo, with ``create_commit``, after comparing the staged files with the remote
           tree: nothing changed, no commit

``pull`` downloads a pushed model or dataset at a revision for offline use. Network and permission
errors end in one clear message that never holds the token.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import RepotuneError
from ..rundir import sha256_file

log = logging.getLogger("repotune")

TOKEN_HELP = ("set a Hugging Face token with write access: run `hf auth login` (or `huggingface-cli login`), or set the "
              "HF_TOKEN environment variable; in Colab, add a secret named HF_TOKEN and allow the notebook to read it. "
              "Tokens are made at https://huggingface.co/settings/tokens")

class PublishError(RepotuneError, RuntimeError):
    """Publish refused or failed; the message says why and what to do. It never holds the token."""


@dataclass(frozen=True)
class Target:
    """One repository to push: what goes where, and how."""

    repo_id: str
    repo_type: str  # "model" | "dataset"
    folder: Path
    private: bool
    commit_message: str
    commit_description: str

    def files(self) -> dict[str, Path]:
        """path in repo -> file on disk, sorted (the commit's operations)."""
        return {p.relative_to(self.folder).as_posix(): p for p in sorted(self.folder.rglob("*")) if p.is_file()}


def hub_url(repo_id: str, repo_type: str) -> str:
    from huggingface_hub import constants

    return f"{constants.ENDPOINT}/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}"


def check_repo_id(repo_id: str, flag: str) -> None:
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise PublishError(f"{flag} {repo_id!r} is not a valid repository id: {err}") from err
    if repo_id.count("/") != 1:
        raise PublishError(f"{flag} {repo_id!r}: give it as ORG/NAME (your user name or an organisation, then the repo name)")


# --- 5.-7. token, repos, push ----------------------------------------------------------------------------

def _network_errors() -> tuple[type[BaseException], ...]:
    """The HTTP clients' transport errors: huggingface_hub's own (httpx2 here), and requests for older stacks."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module, name in (("httpx2", "TransportError"), ("httpx", "TransportError"), ("requests", "RequestException")):
        with contextlib.suppress(ImportError, AttributeError):
            errors.append(getattr(importlib.import_module(module), name))
    return tuple(errors)


def quiet_http_log() -> None:
    # huggingface_hub's HTTP client logs every request at INFO; the CLI's INFO is for repotune's own messages
    for name in ("httpx2", "httpx"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger(name).level))


def _redact(text: str, token: str | None) -> str:
    return text.replace(token, "<HF_TOKEN>") if token else text


@contextlib.contextmanager
def hub_errors(action: str, token: str | None = None, repo_id: str | None = None) -> Iterator[None]:
    """Turn huggingface_hub's errors into a PublishError that says what failed and what to do, never the token."""
    from huggingface_hub import constants
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled, RepositoryNotFoundError

    again = "huggingface_hub already retried what it retries; run the same command again (it skips what is already there)"
    try:
        yield
    except PublishError:
        raise
    except OfflineModeIsEnabled as err:
        raise PublishError(f"{action}: huggingface_hub is in offline mode (HF_HUB_OFFLINE=1): unset it to reach the Hub") from err
    except RepositoryNotFoundError as err:
        raise PublishError(_redact(f"{action}: {repo_id or 'the repository'} was not found, or it is private and the token "
                                   f"cannot see it: check the id; for a private repo, {TOKEN_HELP}", token)) from err
    except HfHubHTTPError as err:
        status = getattr(err.response, "status_code", None)
        first = (str(err).strip().splitlines() or [type(err).__name__])[0].rstrip(".")
        if status == 401:
            message = f"{action}: the Hub rejected the token (401 Unauthorized): {TOKEN_HELP}"
        elif status == 403:
            message = (f"{action}: the token may not write to {repo_id or 'this repository'} (403 Forbidden): use a token with "
                       "the write role, or a fine-grained token with write access to that namespace")
        elif status in (409, 412):
            message = f"{action}: the remote changed while publishing ({first}); run publish again"
        else:
            message = f"{action} failed: {first}. {again}"
        raise PublishError(_redact(message, token)) from err
    except _network_errors() as err:
        raise PublishError(_redact(f"{action}: could not reach the Hub at {constants.ENDPOINT} ({type(err).__name__}: {str(err).rstrip('.')}). "
                                   f"Check the network, proxy and HF_ENDPOINT; {again}", token)) from err
    except (RuntimeError, ValueError) as err:  # an LFS upload wraps its cause in RuntimeError; bad card metadata is a ValueError
        cause = f" ({type(err.__cause__).__name__}: {err.__cause__})" if err.__cause__ else ""
        raise PublishError(_redact(f"{action} failed: {str(err).rstrip('.')}{cause}. {again}", token)) from err


def resolve_token() -> str:
    """HF_TOKEN, then the stored login, then the Colab secret (huggingface_hub's own order)."""
    from huggingface_hub import get_token

    token = get_token()
    if not token:
        raise PublishError(f"no Hugging Face token found: {TOKEN_HELP}")
    return token


def check_token(api, token: str) -> str:
    """The user name the token belongs to; PublishError if the Hub rejects it or it is read-only."""
    with hub_errors("checking the token", token):
        who = api.whoami(token=token)
    role = who.get("auth", {}).get("accessToken", {}).get("role")
    if role == "read":
        raise PublishError(f"the token of {who.get('name')} is read-only: {TOKEN_HELP}")
    return who.get("name", "?")


def _same(local: Path, remote) -> bool:
    """Whether a remote file (RepoFile) holds the local bytes: LFS by sha256, regular files by git blob id."""
    from huggingface_hub.utils import sha

    if remote is None:
        return False
    if remote.lfs is not None:
        return remote.lfs.sha256 == sha256_file(local)
    return remote.blob_id == sha.git_hash(local.read_bytes())


def ensure_repo(api, t: Target, token: str) -> object:
    """Create the repo (private unless --public); refuse to push a private run into an existing public repo."""
    with hub_errors(f"creating {t.repo_type} repo {t.repo_id}", token, t.repo_id):
        api.create_repo(t.repo_id, repo_type=t.repo_type, private=t.private, exist_ok=True, token=token)
        info = api.repo_info(t.repo_id, repo_type=t.repo_type, token=token)
    if t.private and info.private is False:
        raise PublishError(f"{t.repo_id} already exists and is public, and this publish is private: pass --public to "
                           "publish into it, or make the repo private in its settings on the Hub first")
    if not t.private and info.private:
        log.warning("%s already exists and is private: it stays private (--public only applies to new repos); "
                    "change its visibility in its settings on the Hub", t.repo_id)
    return info


def push(api, t: Target, info, token: str, create_pr: bool) -> dict:
    """One commit with the staged files that differ from the remote; none when nothing differs."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete
    from huggingface_hub.hf_api import RepoFile

    local = t.files()
    owned = {rel.split("/")[0] for rel in local if "/" in rel}  # folders publish writes: stale files in them go
    with hub_errors(f"reading the files of {t.repo_id}", token, t.repo_id):
        remote = {} if info.sha is None else {
            f.path: f for f in api.list_repo_tree(t.repo_id, repo_type=t.repo_type, revision=info.sha, recursive=True, token=token)
            if isinstance(f, RepoFile)}
    changed = [rel for rel, path in local.items() if not _same(path, remote.get(rel))]
    stale = sorted(p for p in remote if p not in local and p.split("/")[0] in owned)
    result = {"repo_id": t.repo_id, "repo_type": t.repo_type, "private": t.private, "url": hub_url(t.repo_id, t.repo_type),
              "changed": bool(changed or stale), "files_changed": changed, "files_deleted": stale,
              "sha": info.sha, "commit_url": None, "pr_url": None}
    if not changed and not stale:
        log.info("%s already holds these %d files at %s: no commit", t.repo_id, len(local), info.sha)
        return result
    operations = [CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(local[rel])) for rel in changed]
    operations += [CommitOperationDelete(path_in_repo=p) for p in stale]
    with hub_errors(f"pushing {len(changed)} file(s) to {t.repo_id}", token, t.repo_id):
        commit = api.create_commit(t.repo_id, operations, commit_message=t.commit_message,
                                   commit_description=t.commit_description, repo_type=t.repo_type, token=token,
                                   create_pr=create_pr, parent_commit=info.sha)
    # huggingface_hub drops files the remote already holds (by its own oid check) and makes no commit when
    # none is left, returning the head it found: then nothing changed after all
    return {**result, "changed": commit.oid != info.sha, "sha": commit.oid, "commit_url": commit.commit_url, "pr_url": commit.pr_url}


# --- pull ---------------------------------------------------------------------------------------------

def pull(repo_id: str, out: str | Path, revision: str | None = None, dataset: bool = False) -> dict:
    """Download a model (or dataset) repo at ``revision`` into ``out`` for offline use."""
    from huggingface_hub import HfApi, snapshot_download

    repo_type = "dataset" if dataset else "model"
    check_repo_id(repo_id, "repo")
    quiet_http_log()
    api = HfApi(library_name="repotune")
    with hub_errors(f"finding {repo_type} {repo_id} at {revision or 'main'}", repo_id=repo_id):
        sha = api.repo_info(repo_id, repo_type=repo_type, revision=revision).sha
        path = snapshot_download(repo_id, repo_type=repo_type, revision=sha, local_dir=str(out))
    return {"repo_id": repo_id, "repo_type": repo_type, "sha": sha, "path": path}
