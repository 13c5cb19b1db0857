"""Source trees in other languages for the benchmarks, fetched when a bench first needs them.

Nothing fetched is committed: each tree is unpacked under ``runs/bench-src/`` (git-ignored) from a
pinned package of a registry the machines can reach: npm for JavaScript, Debian for Go.

    python -m bench.sources            # fetch every tree (a few seconds; needs npm and apt-get)
"""

from __future__ import annotations

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
# Python trees of a similar size, on disk already, for the side-by-side figures
LOCAL = {"requests": ("python", SITE / "requests"), "asyncio": ("python", STDLIB / "asyncio")}


def language(name: str) -> str:
    return FETCHED[name][0] if name in FETCHED else LOCAL[name][0]


def tree(name: str) -> Path:
    """Where a source tree lies (fetched ones may not be there yet: see ``ensure``)."""
    if name in LOCAL:
        return LOCAL[name][1]
    return SRC / name / FETCHED[name][3]


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
    for source in FETCHED:
        print(source, ensure(source))
