"""Source trees for the benchmarks, fetched when a bench first needs them.

Nothing fetched is committed: everything lies under ``runs/bench-src/`` (git-ignored).

- ``GIT``: repositories with their history (bench-quality: the history stage reads it), cloned at a
  pinned revision into ``runs/bench-src/git/NAME``, from ``$REPOTUNE_MIRRORS/owner+name/repo`` where a
  local mirror lies there (default ``/work/.mirror``, the bare copies a benchmark machine keeps), else
  from GitHub. Two of them were first committed in 2023 or later, after the base model's training data.
- ``TRANSFER``: ten repositories with their history and question sets written blind to the levers (issue 34), in two
  fixed halves, cloned as ``GIT``'s into ``runs/bench-src/transfer/``.
- ``CLEAN``: open-source repositories at pinned revisions, in two halves (bench-secrets' false findings:
  the rules are tuned on one half, the other is reported), cloned as ``GIT``'s into ``runs/bench-src/clean/``.
- ``FETCHED``: package trees (bench-build's other languages), unpacked from a pinned package of a
  registry the machines can reach: npm for JavaScript, Debian for Go.

    python -m bench.sources            # fetch every tree
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from pathlib import Path

from bench.common import ROOT

SRC = ROOT / "runs" / "bench-src"
STDLIB = Path(sysconfig.get_paths()["stdlib"])
SITE = Path(sysconfig.get_paths()["purelib"])

# name -> (language, registry, package spec, the tree inside the unpacked package)
FETCHED = {
    # an ODM for MongoDB: 270 JavaScript files (lib/) and 29 TypeScript declarations, JSDoc on most functions
    "mongoose": ("javascript", "npm", "mongoose@9.12.1", "package"),
    # an HTTP web framework: 95 Go files, Go doc comments
    "gin": ("go", "debian", "golang-github-gin-gonic-gin-dev=1.8.1-1", "usr/share/gocode/src/github.com/gin-gonic/gin"),
}
# name -> (language, GitHub owner/name, pinned revision, first commit): the repositories behind
# bench/questions/NAME.jsonl, whose paths are the repository's own
GIT = {
    "requests": ("python", "psf/requests", "v2.34.2", "2011"),
    "click": ("python", "pallets/click", "8.5.0", "2014"),
    "mongoose": ("javascript", "Automattic/mongoose", "9.9.3", "2010"),
    "gin": ("go", "gin-gonic/gin", "v1.8.1", "2014"),
    "llm": ("python", "simonw/llm", "f3f4f29c6e5e623c3776cbf6455dda2345638214", "2023"),  # a CLI and library for LLMs
    "huh": ("go", "charmbracelet/huh", "ffb6a97195b4a031925a31cc70c62fc1d309e69d", "2023"),  # terminal forms
}
# name -> (language, GitHub owner/name, pinned revision, first commit, half): issue 34's transfer bench. Its question
# sets (bench/questions/NAME.jsonl, 45 each) were written on 2026-12-07 by five helpers who saw neither the levers nor
# any result (bench/questions/README.md: who, from what, in which styles), before any lever was chosen on them. The
# halves are fixed here, before a lever is tried: a lever is chosen on one half and reported on the other, then the
# halves swap.
TRANSFER = {
    "smolagents": ("python", "huggingface/smolagents", "e3a5b8994b301983b91c0325546e9dc82eab8cf0", "2024", "a"),
    "chi": ("go", "go-chi/chi", "735ae2b87f8c733d616e809ae86e0985c1bc3350", "2015", "a"),
    "ky": ("typescript", "sindresorhus/ky", "3419113b48e034fdcf8fa6bd3be3da7b3d0d758f", "2018", "a"),
    "jiff": ("rust", "BurntSushi/jiff", "ab6e8c83462e9b6d0dfe33f9cb70583d3d82049b", "2024", "a"),
    "jsoup": ("java", "jhy/jsoup", "46b620860af930eedc193a705eaf7cea5aec89a6", "2010", "a"),
    "fastmcp": ("python", "jlowin/fastmcp", "b14b137fddc3145d6b4abd0b3a3f1a11dfc370b0", "2024", "b"),
    "typer": ("python", "fastapi/typer", "9a7b2e83f6b62c750d6026b0de9ebf2026a8b8fa", "2019", "b"),
    "charmlog": ("go", "charmbracelet/log", "ca9d3c76a1188b446da316abdc83bd71a3207209", "2022", "b"),
    "t3env": ("typescript", "t3-oss/t3-env", "7d26a645904a8fa8712c16f31a4737a80e7066fd", "2023", "b"),
    "fd": ("rust", "sharkdp/fd", "ee20f426ddf338ac7ead5c5f00ea49258005caaf", "2017", "b"),
}
# name -> (language, GitHub owner/name, pinned revision, half): clean open-source code for bench-secrets' false
# findings (none holds a real credential). The scanner's rules are tuned on the "tune" half only; the "report"
# half's figure is the one reported (a rule fitted to code it is judged on says nothing of a user's code).
CLEAN = {
    "flask": ("python", "pallets/flask", "2ac89889f4cc330eabd50f295dcef02828522c69", "tune"),
    "httpx": ("python", "encode/httpx", "ae1b9f66238f75ced3ced5e4485408435de10768", "tune"),
    "express": ("javascript", "expressjs/express", "a3714473feb3d2908add734d340e7755fd85e0a3", "tune"),
    "gin": ("go", "gin-gonic/gin", "dcaa4296d111981ffb31ac3eba90bb63e1eb5ab9", "tune"),
    "axum": ("rust", "tokio-rs/axum", "3d78036dcac289d6c1d54934708acb6a5bd73686", "tune"),
    "gson": ("java", "google/gson", "9835b6f90192f79cdf5300c528fc6212455fb6c1", "tune"),
    "sinatra": ("ruby", "sinatra/sinatra", "cb22afd7902b566b6eaba6c4ea89739494a65d12", "tune"),
    "black": ("python", "psf/black", "8947c48ef2077c3a301b03c1e814dc2e3f78436e", "report"),
    "pydantic": ("python", "pydantic/pydantic", "2151025aa51263f3016502b00010b78e4481eaa1", "report"),
    "vite": ("typescript", "vitejs/vite", "a98c8d95d552c6fa98ab66fb810f5b39ad5abf49", "report"),
    "got": ("typescript", "sindresorhus/got", "d00d845a0b435365ec73ea5a1fca6e17ee677184", "report"),
    "cobra": ("go", "spf13/cobra", "adbc8813901bba65827259daa8e22ff94ec1f30e", "report"),
    "prometheus": ("go", "prometheus/prometheus", "d15adb9ad7e5d9fbde3a9a8f30200593a5a14d86", "report"),
    "ripgrep": ("rust", "BurntSushi/ripgrep", "3fce3b5bb0236da2df6d99672afb8a719642eca7", "report"),
}
# name -> (language, GitHub owner/name, pinned revision, paths removed): code-heavy repositories (90 %+ code chunks, a
# short README) for bench-codeheavy: the default recipe must build, train and pass the gate on them (issue 33). The
# removal is committed in the clone (the history stays): requests as its package source and README only.
CODE_HEAVY = {
    "go-cmp": ("go", "google/go-cmp", "b133f1f1932e48f466f597a3346ce6f5a49a0dc1", ()),
    "pflag": ("go", "spf13/pflag", "5fdac2d16c16d60605cb8baa887e8c5c38ef623f", ()),
    "requests-src": ("python", "psf/requests", "1f6589ec3a1ee910f9a65cc3ceac60b26677bc0e",
                     ("docs", "tests", "ext", "HISTORY.md", "AUTHORS.rst")),
    # go-cmp's chunks are 85.7 % code, under the 90 %: cobra without its documentation site is a third
    "cobra": ("go", "spf13/cobra", "adbc8813901bba65827259daa8e22ff94ec1f30e", ("site",)),
}
MIRRORS = Path(os.environ.get("REPOTUNE_MIRRORS", "/work/.mirror"))
# Python trees of a similar size, on disk already, for the side-by-side figures
LOCAL = {"requests": ("python", SITE / "requests"), "asyncio": ("python", STDLIB / "asyncio")}


def language(name: str) -> str:
    return FETCHED[name][0] if name in FETCHED else LOCAL[name][0]


def tree(name: str) -> Path:
    """Where a source tree lies (fetched ones may not be there yet: see ``ensure``)."""
    if name in LOCAL:
        return LOCAL[name][1]
    return SRC / name / FETCHED[name][3]


def checkout(name: str, table: str | None = None) -> Path:
    """The git repository ``name`` of ``GIT`` (or of ``CLEAN`` / ``CODE_HEAVY`` / ``TRANSFER``, with ``table="clean"`` /
    ``"codeheavy"`` / ``"transfer"``) at its pinned revision, with its history, cloned on first use; a code-heavy one with its
    paths removed in a commit of its own on top."""
    table = table or ("transfer" if name in TRANSFER else "git")
    _, slug, rev, removed = {"clean": CLEAN, "codeheavy": CODE_HEAVY, "transfer": TRANSFER}.get(table, GIT)[name][:4]
    dest = SRC / table / name
    if not (dest / ".git").is_dir():
        mirror = MIRRORS / slug.replace("/", "+") / "repo"
        url = str(mirror) if mirror.is_dir() else f"https://github.com/{slug}.git"
        print(f"bench: cloning {url} into {dest}", file=sys.stderr, flush=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "clone", "-q", "--no-checkout", url, str(dest)], check=True)
    head = subprocess.run(["git", "-C", str(dest), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    want = subprocess.run(["git", "-C", str(dest), "rev-parse", f"{rev}^{{commit}}"], capture_output=True, text=True,
                          check=True).stdout.strip()
    if table == "codeheavy" and removed:
        parent = subprocess.run(["git", "-C", str(dest), "rev-parse", "HEAD~1"], capture_output=True, text=True).stdout.strip()
        if parent == want:
            return dest  # the removal is committed on the pinned revision already
    if head != want or not any(p.name != ".git" for p in dest.iterdir()):
        subprocess.run(["git", "-C", str(dest), "checkout", "-q", "--force", "--detach", want], check=True)
    if table == "codeheavy" and removed:
        subprocess.run(["git", "-C", str(dest), "rm", "-q", "-r", *removed], check=True)
        subprocess.run(["git", "-C", str(dest), "-c", "user.email=bench@repotune", "-c", "user.name=bench", "commit", "-q",
                        "-m", "keep the package source and its README only (a code-heavy repository for the bench)"], check=True)
    return dest


def with_history(name: str) -> tuple:
    """(language, GitHub owner/name, pinned revision, first commit) of a ``GIT`` or ``TRANSFER`` repository."""
    return (TRANSFER[name] if name in TRANSFER else GIT[name])[:4]


def post_2023(name: str) -> bool:
    return int(with_history(name)[3]) >= 2023


def ensure(name: str) -> Path:
    """The source tree, fetched and unpacked first if it is not there yet."""
    path = tree(name)
    if name in LOCAL or path.is_dir():
        return path
    _, registry, spec, _ = FETCHED[name]
    dest = SRC / name
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"bench: fetching {spec} from {registry} into {dest}", file=sys.stderr, flush=True)
        if registry == "npm":
            subprocess.run(["npm", "pack", spec, "--silent", "--pack-destination", tmp], check=True, capture_output=True)
            with tarfile.open(next(Path(tmp).glob("*.tgz"))) as tar:
                tar.extractall(dest, filter="data")
        else:  # apt-get download: the .deb only, nothing installed; dpkg -x unpacks its files
            subprocess.run(["apt-get", "download", spec], check=True, capture_output=True, cwd=tmp)
            subprocess.run(["dpkg", "-x", str(next(Path(tmp).glob("*.deb"))), str(dest)], check=True)
    if not path.is_dir():
        raise RuntimeError(f"{spec} unpacked, but {path} is not in it")
    return path


if __name__ == "__main__":
    for source in GIT:
        print(source, checkout(source))
    for source in CLEAN:
        print(source, checkout(source, "clean"))
    for source in TRANSFER:
        print(source, checkout(source, "transfer"))
    for source in FETCHED:
        print(source, ensure(source))
