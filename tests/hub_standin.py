"""A local stand-in for the Hugging Face Hub HTTP API, enough for publish and pull to run against.

The real Hub is out of reach here, so tests point huggingface_hub at this server with ``HF_ENDPOINT``
(and ``HF_HUB_DISABLE_XET=1`` so uploads use the plain HTTP + LFS protocol). It implements the calls
huggingface_hub 2.x makes for publish and pull, as its source shows them:

| call | endpoint |
|---|---|
| ``whoami`` (token check) | ``GET /api/whoami-v2`` |
| user-agent detection (first request of a process) | ``GET /api/agent-harnesses`` |
| ``create_repo`` | ``POST /api/repos/create`` (409 when the repo exists) |
| ``repo_info`` / ``model_info`` / ``dataset_info`` | ``GET /api/{models,datasets}/ORG/NAME[/revision/REV]`` |
| ``list_repo_tree`` | ``GET /api/{type}s/ORG/NAME/tree/REV[/PATH]?recursive=..`` |
| ``create_commit`` / ``upload_folder``: README check | ``POST /api/validate-yaml`` |
| ... upload modes | ``POST /api/{type}s/ORG/NAME/preupload/REV`` (``lfs`` or ``regular``, and the remote oid) |
| ... LFS batch | ``POST /[datasets/]ORG/NAME.git/info/lfs/objects/batch`` (``upload`` actions point back here) |
| ... LFS upload | ``PUT /lfs-upload/SHA256`` |
| ... the commit | ``POST /api/{type}s/ORG/NAME/commit/REV[?create_pr=1]`` (ndjson) |
| ``hf_hub_download`` / ``snapshot_download`` | ``HEAD``/``GET /[datasets/]ORG/NAME/resolve/REV/PATH`` |

Every request is recorded (method, path, whether it carried a token), so a test can assert that a
refused publish sent nothing, and every repository keeps its commits with full file snapshots.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

# LFS by extension, as the Hub's default .gitattributes says (the subset a model or dataset uses),
# plus what the Hub itself routes to LFS: large or binary files.
LFS_SUFFIXES = (".safetensors", ".bin", ".arrow", ".parquet", ".pt", ".pth", ".onnx", ".h5", ".msgpack", ".npy", ".npz",
                ".pkl", ".zip", ".gz", ".tar", ".png", ".jpg")
LFS_SIZE = 10 * 1024 * 1024  # bytes: the Hub's threshold for regular files
GITATTRIBUTES = b"".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n".encode() for s in LFS_SUFFIXES)


def git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Blob:
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def oid(self) -> str:  # what the Hub reports as a file's oid: the git blob id (of the pointer, for LFS)
        if not self.lfs:
            return git_blob_oid(self.data)
        return git_blob_oid(f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {len(self.data)}\n".encode())


@dataclass
class Commit:
    oid: str
    parent: str | None
    summary: str
    description: str
    files: dict[str, Blob]
    pr: int | None = None


@dataclass
class Repo:
    type: str  # "model" | "dataset"
    id: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # "main", "refs/pr/1" -> commit oid

    def resolve(self, revision: str) -> Commit | None:
        oid = self.refs.get(revision, revision)
        return self.commits.get(oid)

    def pushed(self) -> list[Commit]:
        """The commits made through /commit (the initial .gitattributes commit left out)."""
        return [c for c in self.commits.values() if c.parent is not None]


@dataclass
class Request:
    method: str
    path: str
    authorized: bool


class HubStandin:
    """``with HubStandin(tokens={"hf_x"}) as hub: ... hub.url ...``: a thread serving on 127.0.0.1."""

    def __init__(self, tokens: set[str] = frozenset(), user: str = "tester", orgs: tuple[str, ...] = ("acme",)):
        self.tokens = set(tokens)
        self.user = user
        self.orgs = orgs
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs: dict[str, bytes] = {}  # sha256 -> content
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> HubStandin:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def repo(self, repo_type: str, repo_id: str) -> Repo:
        return self.repos[(repo_type, repo_id)]

    # --- state changes, called by the handler under the lock ----------------------------------------

    def _new_oid(self, *parts: str) -> str:
        return hashlib.sha1("\0".join(parts).encode() + str(len(self.requests)).encode()).hexdigest()

    def create(self, repo_type: str, repo_id: str, private: bool) -> Repo:
        repo = Repo(repo_type, repo_id, private)
        # like the Hub: a new repo has one commit holding the default .gitattributes
        first = Commit(self._new_oid(repo_id, "initial"), None, "initial commit", "", {".gitattributes": Blob(GITATTRIBUTES, False)})
        repo.commits[first.oid] = first
        repo.refs["main"] = first.oid
        self.repos[(repo_type, repo_id)] = repo
        return repo


def _parse_repo(parts: list[str]) -> tuple[str, str, list[str]]:
    """['api', 'datasets', 'acme', 'd', 'tree', 'main'] style paths -> (type, id, rest)."""
    return parts[0].rstrip("s"), f"{parts[1]}/{parts[2]}", parts[3:]


def _handler(hub: HubStandin):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet: pytest shows failures, not access logs
            pass

        # --- plumbing ------------------------------------------------------------------------------

        def _body(self) -> bytes:
            n = int(self.headers.get("Content-Length") or 0)
            if n:
                return self.rfile.read(n)
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                data = b""
                while True:
                    size = int(self.rfile.readline().strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return data
                    data += self.rfile.read(size)
                    self.rfile.readline()
            return b""

        def _send(self, status: int, payload=None, headers: dict | None = None, raw: bytes | None = None, head: bool = False):
            body = raw if raw is not None else (json.dumps(payload).encode() if payload is not None else b"")
            self.send_response(status)
            if raw is None:
                self.send_header("Content-Type", "application/json")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _error(self, status: int, message: str, code: str | None = None, head: bool = False):
            headers = {"X-Error-Message": message, **({"X-Error-Code": code} if code else {})}
            self._send(status, {"error": message}, headers=headers, head=head)

        def _token(self) -> str | None:
            auth = self.headers.get("Authorization", "")
            return auth[len("Bearer "):] if auth.startswith("Bearer ") else None

        def _authorized(self) -> bool:
            return self._token() in hub.tokens

        def _record(self) -> tuple[list[str], dict]:
            split = urlsplit(self.path)
            with hub.lock:
                hub.requests.append(Request(self.command, split.path, self._authorized()))
            parts = [unquote(p) for p in split.path.strip("/").split("/")]
            return parts, parse_qs(split.query)

        def _repo_or_404(self, repo_type: str, repo_id: str, head: bool = False) -> Repo | None:
            repo = hub.repos.get((repo_type, repo_id))
            if repo is None or (repo.private and not self._authorized()):
                self._error(404, "Repository not found", "RepoNotFound", head=head)
                return None
            return repo

        # --- GET / HEAD ----------------------------------------------------------------------------

        def do_HEAD(self):
            self.do_GET(head=True)

        def do_GET(self, head: bool = False):
            parts, query = self._record()
            if parts[:2] == ["api", "agent-harnesses"]:  # huggingface_hub's user-agent detection, fetched once
                return self._send(200, {"standardEnvVars": [], "harnesses": {}})
            if parts[:2] == ["api", "whoami-v2"]:
                if not self._authorized():
                    return self._error(401, "Invalid credentials in Authorization header")
                return self._send(200, {"type": "user", "name": hub.user, "orgs": [{"name": o} for o in hub.orgs],
                                        "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}}})
            if parts[0] == "api" and parts[1] in ("models", "datasets") and len(parts) >= 4:
                repo_type, repo_id, rest = _parse_repo(parts[1:])
                repo = self._repo_or_404(repo_type, repo_id)
                if repo is None:
                    return
                if not rest or rest[0] == "revision":
                    commit = repo.resolve(rest[1] if rest else "main")
                    if commit is None:
                        return self._error(404, "Revision not found", "RevisionNotFound")
                    return self._send(200, {"id": repo.id, "sha": commit.oid, "private": repo.private,
                                            "siblings": [{"rfilename": p} for p in sorted(commit.files)]})
                if rest[0] == "tree":
                    commit = repo.resolve(rest[1])
                    if commit is None:
                        return self._error(404, "Revision not found", "RevisionNotFound")
                    prefix = "/".join(rest[2:])
                    recursive = query.get("recursive", ["false"])[0].lower() in ("true", "1")
                    return self._send(200, _tree(commit, prefix, recursive))
            if parts[0] != "api":
                return self._resolve(parts, head)
            return self._error(404, f"no such endpoint in the stand-in: GET {self.path}")

        def _resolve(self, parts: list[str], head: bool):
            repo_type = "model"
            if parts[0] == "datasets":
                repo_type, parts = "dataset", parts[1:]
            if len(parts) < 5 or parts[2] != "resolve":
                return self._error(404, f"no such endpoint in the stand-in: {self.command} {self.path}", head=head)
            repo = self._repo_or_404(repo_type, f"{parts[0]}/{parts[1]}", head=head)
            if repo is None:
                return
            commit = repo.resolve(parts[3])
            if commit is None:
                return self._error(404, "Revision not found", "RevisionNotFound", head=head)
            blob = commit.files.get("/".join(parts[4:]))
            if blob is None:
                return self._error(404, "Entry not found", "EntryNotFound", head=head)
            headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{blob.oid}"', "Content-Type": "application/octet-stream"}
            if blob.lfs:
                headers |= {"X-Linked-Etag": f'"{blob.sha256}"', "X-Linked-Size": str(len(blob.data))}
            self._send(200, raw=blob.data, headers=headers, head=head)

        # --- POST / PUT ----------------------------------------------------------------------------

        def do_PUT(self):
            parts, _ = self._record()
            body = self._body()
            if parts[0] == "lfs-upload" and len(parts) == 2:
                if hashlib.sha256(body).hexdigest() != parts[1]:
                    return self._error(400, "sha256 of the uploaded content does not match the oid")
                with hub.lock:
                    hub.lfs[parts[1]] = body
                return self._send(200, {})
            return self._error(404, f"no such endpoint in the stand-in: PUT {self.path}")

        def do_POST(self):
            parts, query = self._record()
            body = self._body()
            if parts[-4:] == ["info", "lfs", "objects", "batch"]:
                return self._lfs_batch(parts, body)
            if parts[0] != "api":
                return self._error(404, f"no such endpoint in the stand-in: POST {self.path}")
            if not self._authorized():
                return self._error(401, "Invalid credentials in Authorization header")
            if parts[1:] == ["repos", "create"]:
                payload = json.loads(body)
                repo_type = payload.get("type") or "model"
                repo_id = f"{payload['organization'] or hub.user}/{payload['name']}"
                url = f"{hub.url}/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}"
                with hub.lock:
                    if (repo_type, repo_id) in hub.repos:  # like the Hub: 409, with the existing repo's url
                        return self._send(409, {"error": "You already created this repo", "url": url},
                                          headers={"X-Error-Message": "You already created this repo"})
                    # no visibility given: the Hub's default, public
                    hub.create(repo_type, repo_id, private=payload.get("visibility", "public") == "private")
                return self._send(200, {"url": url, "name": repo_id})
            if parts[1:] == ["validate-yaml"]:
                return self._send(200, {"errors": [], "warnings": []})
            if parts[1] in ("models", "datasets") and len(parts) >= 6:
                repo_type, repo_id, rest = _parse_repo(parts[1:])
                repo = self._repo_or_404(repo_type, repo_id)
                if repo is None:
                    return
                revision = "/".join(rest[1:])
                if rest[0] == "preupload":
                    return self._preupload(repo, revision, json.loads(body))
                if rest[0] == "commit":
                    return self._commit(repo, revision, body, create_pr=query.get("create_pr", ["0"])[0] == "1")
            return self._error(404, f"no such endpoint in the stand-in: POST {self.path}")

        def _preupload(self, repo: Repo, revision: str, payload: dict):
            commit = repo.resolve(revision)
            files = []
            for f in payload["files"]:
                sample = base64.b64decode(f["sample"])
                lfs = f["path"].endswith(LFS_SUFFIXES) or f["size"] >= LFS_SIZE or b"\0" in sample
                remote = commit.files.get(f["path"]) if commit else None
                # the oid huggingface_hub compares with its local one: sha256 for LFS, git blob id otherwise
                oid = None if remote is None else (remote.sha256 if remote.lfs else remote.oid)
                files.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": oid})
            self._send(200, {"files": files, "commitOid": commit.oid if commit else None})

        def _lfs_batch(self, parts: list[str], body: bytes):
            if not self._authorized():
                return self._error(401, "Invalid credentials in Authorization header")
            payload = json.loads(body)
            objects = []
            for obj in payload["objects"]:
                entry = {"oid": obj["oid"], "size": obj["size"]}
                if obj["oid"] not in hub.lfs:  # already stored: no actions, the client skips the upload
                    entry["actions"] = {"upload": {"href": f"{hub.url}/lfs-upload/{obj['oid']}"}}
                objects.append(entry)
            self._send(200, {"transfer": "basic", "objects": objects}, headers={"Content-Type": "application/vnd.git-lfs+json"})

        def _commit(self, repo: Repo, revision: str, body: bytes, create_pr: bool):
            lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
            header = next(item["value"] for item in lines if item["key"] == "header")
            with hub.lock:
                parent = repo.resolve(revision)
                if parent is None:
                    return self._error(404, "Revision not found", "RevisionNotFound")
                files = dict(parent.files)
                for item in lines:
                    key, value = item["key"], item["value"]
                    if key == "file":
                        files[value["path"]] = Blob(base64.b64decode(value["content"]), False)
                    elif key == "lfsFile":
                        if value["oid"] not in hub.lfs:
                            return self._error(422, f"LFS object {value['oid']} was never uploaded")
                        files[value["path"]] = Blob(hub.lfs[value["oid"]], True)
                    elif key == "deletedFile":
                        files.pop(value["path"], None)
                    elif key == "deletedFolder":
                        files = {p: b for p, b in files.items() if not p.startswith(value["path"].rstrip("/") + "/")}
                oid = hub._new_oid(repo.id, header["summary"], *sorted(files))
                pr = None
                if create_pr:
                    pr = 1 + sum(1 for ref in repo.refs if ref.startswith("refs/pr/"))
                    repo.refs[f"refs/pr/{pr}"] = oid
                else:
                    repo.refs["main"] = oid
                repo.commits[oid] = Commit(oid, parent.oid, header["summary"], header.get("description", ""), files, pr)
            prefix = "datasets/" if repo.type == "dataset" else ""
            self._send(200, {"commitUrl": f"{hub.url}/{prefix}{repo.id}/commit/{oid}", "commitOid": oid,
                             "pullRequestUrl": f"{hub.url}/{prefix}{repo.id}/discussions/{pr}" if pr else None})

    return Handler


def _tree(commit: Commit, prefix: str, recursive: bool) -> list[dict]:
    """Entries under ``prefix``: files (with LFS info) and folders, one level or all levels deep."""
    base = prefix.rstrip("/") + "/" if prefix else ""
    out, folders = [], set()
    for path, blob in sorted(commit.files.items()):
        if not path.startswith(base):
            continue
        rest = path[len(base):]
        dirs = rest.split("/")[:-1]
        for i in range(len(dirs) if recursive else min(1, len(dirs))):
            folders.add(base + "/".join(dirs[: i + 1]))
        if "/" in rest and not recursive:
            continue
        entry = {"type": "file", "path": path, "size": len(blob.data), "oid": blob.oid}
        if blob.lfs:
            entry["lfs"] = {"oid": blob.sha256, "size": len(blob.data), "pointerSize": 134}
        out.append(entry)
    out += [{"type": "directory", "path": p, "oid": hashlib.sha1(p.encode()).hexdigest()} for p in sorted(folders)]
    return out


__all__ = ["HubStandin", "git_blob_oid", "LFS_SUFFIXES"]
