"""Write notebooks/colab/constraints.txt: the versions the notebook installs repotune with on Colab.

Every package repotune's install pulls in (`repotune[test]` and everything below it) that Colab already has is pinned
to Colab's own version, read from the published freeze (pip-freeze.gpu.<date>.txt, a copy of googlecolab/backend-info's
file); the rest are pinned to repotune's known-good versions (../../constraints.txt). EXCEPTIONS lists, with its
reason, each package that cannot take that version. torch is left out: the notebook pins the torch Colab has.

Which packages repotune pulls in is read from an environment it is installed in, so run this with the Colab venv's
Python (`make test-colab` builds it), then `make test-colab` again on what it wrote:

    .venv-colab/bin/python notebooks/colab/make_constraints.py [--freeze notebooks/colab/pip-freeze.gpu.DATE.txt]

A new freeze: copy the file (named by the date of its commit in googlecolab/backend-info) beside this one and rerun;
the newest copy is the default. `tests/test_colab_env.py` checks the result against the freeze and pyproject.toml.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import textwrap
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OUT = HERE / "constraints.txt"
KNOWN_GOOD = ROOT / "constraints.txt"

# Colab's Python and the one the Colab venv runs on here: requirements with markers count if they hold on either.
PYTHONS = ("3.11", "3.13")

# torch is Colab's CUDA build, pinned by the notebook to what is installed; its own requirements (nvidia-*, triton,
# sympy ...) came with it, so they are Colab's business too and are not walked into.
LEFT_OUT = {"torch"}

# name -> (the version spec to pin instead, why). Each one is a pin that is neither Colab's version nor, for a package
# Colab lacks, constraints.txt's.
EXCEPTIONS = {
    "sentence-transformers": (
        "6.2.0",
        "repotune needs sentence-transformers>=6.2 (pyproject.toml); 6.2.0 is the version constraints.txt is tested with",
    ),
    "selenium": (
        "4.39.0",
        "constraints.txt's selenium 4.51 needs urllib3>=2.6.3 and Colab has urllib3 2.5.0; "
        "4.39.0 is the newest selenium pip finds that accepts Colab's urllib3 (the serve tests pass with it)",
    ),
}


def parse_pins(text: str) -> dict[str, str]:
    """name -> version spec (`==1.2.3`, `==1.2.*`) of each `name==...` line; comments, URLs and `@` lines skipped."""
    pins = {}
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#") or "==" not in line or "@" in line:
            continue
        name, spec = line.split("==", 1)
        pins[canonicalize_name(name.split("[")[0])] = spec.strip()
    return pins


def newest_freeze() -> Path:
    copies = sorted(HERE.glob("pip-freeze.gpu.*.txt"))
    if not copies:
        sys.exit(f"no pip-freeze.gpu.<date>.txt in {HERE}: copy Colab's freeze there first")
    return copies[-1]


def pulled_in(root: str = "repotune", extras: tuple[str, ...] = ("test",)) -> tuple[set[str], set[str]]:
    """The canonical names `root[extras]` requires, transitively, read from the installed metadata; and those that
    are required but not installed here (their own requirements cannot be read, so they end the walk)."""
    seen, missing = set(), set()
    todo = [(root, set(extras))]
    while todo:
        name, wanted = todo.pop()
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.add(canonicalize_name(name))
            continue
        for line in dist.requires or []:
            req = Requirement(line)
            dep = canonicalize_name(req.name)
            envs = [{"python_version": v, "python_full_version": f"{v}.0", "extra": e} for v in PYTHONS for e in {"", *wanted}]
            if dep in LEFT_OUT or (req.marker and not any(req.marker.evaluate(env) for env in envs)):
                continue
            key = (dep, frozenset(req.extras))
            if key not in seen:
                seen.add(key)
                todo.append((dep, set(req.extras)))
    return {dep for dep, _ in seen}, missing


def render(names: set[str], colab: dict[str, str], known_good: dict[str, str], freeze_name: str) -> str:
    """The constraints file: Colab's versions first, then the packages Colab lacks; each exception with its reason."""
    def pin(name: str, usual: str, whose: str) -> list[str]:
        if name in EXCEPTIONS:
            spec, why = EXCEPTIONS[name]
            comment = textwrap.wrap(f"not {whose} {usual}: {why}", width=116, subsequent_indent="  ")
            return [f"# {line}" for line in comment] + [f"{name}=={spec}"]
        return [f"{name}=={usual}"]

    lines = [
        "# repotune's install on Google Colab: `pip install -c notebooks/colab/constraints.txt -e .[test]` beside a",
        "# `torch==<Colab's>` constraint (the notebook keeps Colab's CUDA torch; no torch line here).",
        f"# Written by notebooks/colab/make_constraints.py from {freeze_name} (googlecolab/backend-info); do not edit",
        "# by hand: change EXCEPTIONS there and rerun it. `make test-colab` runs repotune's tests on these versions.",
        "",
        f"# Colab's own versions ({freeze_name})",
    ]
    for name in sorted(names & colab.keys()):
        lines += pin(name, colab[name], "Colab's")
    lines += ["", "# not on Colab: repotune's known-good versions (constraints.txt)"]
    for name in sorted((names & known_good.keys()) - colab.keys()):
        lines += pin(name, known_good[name], "constraints.txt's")
    return "\n".join(lines) + "\n"


def versions(freeze: Path, constraints: Path = OUT, installed_with: Path | None = None) -> int:
    """Print each pinned package's installed version beside Colab's and the pin; 1 if one is not what the file it was
    installed with (`installed_with`, default `constraints`) says."""
    colab = parse_pins(freeze.read_text())
    pins = parse_pins(constraints.read_text())
    used = parse_pins(installed_with.read_text()) if installed_with else pins
    print(f"{'package':32} {'here':16} {'Colab (' + freeze.name.split('.')[2] + ')':20} pin")
    print(f"{'python':32} {sys.version.split()[0]:16} {'3.13':20} (the Colab venv runs {sys.version_info[0]}.{sys.version_info[1]})")
    wrong = []
    for name in ["torch", *sorted(pins)]:
        try:
            here = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            here = "-"
        spec = used.get(name, "")
        if spec and not re.fullmatch(re.escape(spec).replace(r"\*", ".*"), here):
            wrong.append(name)
        shown = pins.get(name) or "(the notebook keeps Colab's)"
        note = "" if here == colab.get(name, here) else "  <- not Colab's"
        if name in pins and name not in used:
            note += ", not pinned in this venv"
        print(f"{name:32} {here:16} {colab.get(name, '-'):20} {shown}{note}")
    if wrong:
        print(f"installed versions that are not the pinned ones: {', '.join(wrong)}")
    return 1 if wrong else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--freeze", type=Path, default=None, help="Colab's freeze copy (default: the newest beside this file)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--versions", action="store_true", help="write nothing: show the installed versions beside Colab's")
    ap.add_argument("--installed-with", type=Path, default=None, help="with --versions: the constraints the venv was "
                    "installed with, when not --out (.ci/colab-venv drops a pin or two the CPU torch cannot take)")
    args = ap.parse_args(argv)
    freeze = args.freeze or newest_freeze()
    if args.versions:
        return versions(freeze, args.out, args.installed_with)
    colab = parse_pins(freeze.read_text())
    known_good = {n: s for n, s in parse_pins(KNOWN_GOOD.read_text()).items() if n not in LEFT_OUT}
    names, missing = pulled_in()
    unknown = sorted(n for n in EXCEPTIONS if n not in names)
    if unknown:
        sys.exit(f"EXCEPTIONS names packages repotune does not pull in: {', '.join(unknown)}; remove them")
    args.out.write_text(render(names, colab, known_good, freeze.name))
    unpinned = sorted(names - colab.keys() - known_good.keys())
    print(f"{args.out}: {len(names & colab.keys())} of Colab's versions, {len((names & known_good.keys()) - colab.keys())} "
          f"from constraints.txt, {len(EXCEPTIONS)} exceptions")
    if unpinned:
        print(f"unpinned (neither on Colab nor in constraints.txt): {', '.join(unpinned)}")
    if missing:  # required only on the other Python (marker), so their own requirements were not read
        print(f"not installed here, requirements not walked: {', '.join(sorted(missing))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
