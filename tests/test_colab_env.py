"""notebooks/colab/constraints.txt, the versions the notebook installs with on Colab, against the copy of Colab's
freeze it was made from and against pyproject.toml. Reads files only: `make test-colab` is what installs them."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
COLAB = ROOT / "notebooks" / "colab"
CONSTRAINTS = COLAB / "constraints.txt"
FREEZE = sorted(COLAB.glob("pip-freeze.gpu.*.txt"))[-1]


def _generator():
    spec = importlib.util.spec_from_file_location("make_constraints", COLAB / "make_constraints.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_constraints = _generator()
parse_pins = make_constraints.parse_pins


def pins_with_comments(text: str) -> list[tuple[str, str, str]]:
    """(name, spec, the comment block directly above it) per `name==spec` line."""
    entries, comment = [], []
    for line in text.splitlines():
        if line.startswith("#"):
            comment.append(line.lstrip("# ").strip())
        elif "==" in line:
            name, spec = line.split(" #", 1)[0].strip().split("==", 1)
            entries.append((canonicalize_name(name), spec, " ".join(comment)))
            comment = []
        else:
            comment = []
    return entries


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def requirements() -> dict[str, SpecifierSet]:
    project = pyproject()
    lines = project["dependencies"] + project["optional-dependencies"]["test"]
    return {canonicalize_name(r.name): r.specifier for r in map(Requirement, lines)}


def spec_version(spec: str) -> Version:
    """The version a pin names; `2.26.*` stands for 2.26."""
    return Version(spec.removesuffix(".*"))


def problems(text: str, colab: dict[str, str], known_good: dict[str, str], required: dict[str, SpecifierSet]) -> list[str]:
    """What is wrong with a Colab constraints file: a pin that is neither Colab's version (for a package Colab has) nor
    constraints.txt's (for one it lacks) and carries no `# not <whose> <version>: <reason>` comment, a torch line, a
    package pinned twice, a pin outside pyproject's range."""
    found, seen = [], set()
    for name, spec, comment in pins_with_comments(text):
        if name in seen:
            found.append(f"{name} is pinned twice")
        seen.add(name)
        if name == "torch":
            found.append("torch is pinned: the notebook pins the torch Colab has")
            continue
        whose, usual = ("Colab's", colab[name]) if name in colab else ("constraints.txt's", known_good.get(name))
        exception = re.match(rf"not {re.escape(whose)} {re.escape(usual or '')}: (.+)", comment)
        if usual is not None and spec != usual and not exception:
            found.append(f"{name}=={spec} is not {whose} {usual}, and no `# not {whose} {usual}: why` says why")
        if spec == usual and exception:
            found.append(f"{name}=={spec} is {whose} version, yet a comment calls it an exception")
        if name in required and spec_version(spec) not in required[name]:
            found.append(f"{name}=={spec} is outside pyproject's {name}{required[name]}")
    return found


@pytest.fixture(scope="module")
def files():
    return CONSTRAINTS.read_text(), parse_pins(FREEZE.read_text()), parse_pins((ROOT / "constraints.txt").read_text())


def test_constraints_agree_with_colabs_freeze_and_pyproject(files):
    text, colab, known_good = files
    assert problems(text, colab, known_good, requirements()) == []


def test_every_exception_is_one_the_generator_declares(files):
    """Each pin that is not the usual one is in make_constraints.EXCEPTIONS, and each of those is in the file."""
    text, colab, known_good = files
    unusual = {name for name, spec, _ in pins_with_comments(text) if spec != colab.get(name, known_good.get(name))}
    assert unusual == set(make_constraints.EXCEPTIONS)
    for name, (spec, why) in make_constraints.EXCEPTIONS.items():
        assert parse_pins(text)[name] == spec and len(why) > 20


def test_file_is_what_the_generator_writes(files):
    """No hand edits: rendering the file's own package names again gives the file."""
    text, colab, known_good = files
    assert make_constraints.render(set(parse_pins(text)), colab, known_good, FREEZE.name) == text
    assert FREEZE.name in text.split("\n\n", 1)[0]


def test_shared_core_packages_are_colabs(files):
    """The mix that matters on Colab: its transformers, datasets and hub are the ones pinned (gradio there needs
    huggingface-hub<2), and sentence-transformers is the one exception among them."""
    text, colab, _ = files
    pins = parse_pins(text)
    for name in ("transformers", "datasets", "huggingface-hub", "tokenizers", "numpy", "pyarrow", "pandas"):
        assert pins[name] == colab[name], name
    assert Version(pins["huggingface-hub"]) < Version("2")
    assert "torch" not in pins and "sentence-transformers" in make_constraints.EXCEPTIONS


def test_check_fails_on_a_pin_that_is_not_colabs(files):
    text, colab, known_good = files
    wrong = re.sub(r"^numpy==.*$", "numpy==2.1.4", text, flags=re.M)
    assert problems(wrong, colab, known_good, requirements()) == [
        "numpy==2.1.4 is not Colab's 2.1.3, and no `# not Colab's 2.1.3: why` says why"]


def test_check_fails_on_an_exception_without_its_reason(files):
    text, colab, known_good = files
    bare = re.sub(r"^# not Colab's 5\.7\.0:[^\n]*\n(#   [^\n]*\n)*", "", text, flags=re.M)
    assert bare != text
    assert problems(bare, colab, known_good, requirements()) == [
        "sentence-transformers==6.2.0 is not Colab's 5.7.0, and no `# not Colab's 5.7.0: why` says why"]


def test_check_fails_on_torch_and_on_a_pin_pyproject_refuses(files):
    text, colab, known_good = files
    assert problems(text + "torch==2.11.0\n", colab, known_good, requirements()) == [
        "torch is pinned: the notebook pins the torch Colab has"]
    colabs_own = re.sub(r"^sentence-transformers==.*$", "sentence-transformers==5.7.0", text, flags=re.M)
    found = problems(colabs_own, colab, known_good, requirements())
    assert found == ["sentence-transformers==5.7.0 is Colab's version, yet a comment calls it an exception",
                     "sentence-transformers==5.7.0 is outside pyproject's sentence-transformers<7,>=6.2"]


def test_requires_python_admits_colabs_and_ours():
    allowed = SpecifierSet(pyproject()["requires-python"])
    assert all(v in allowed for v in ("3.11", "3.12", "3.13")), "Colab runs 3.13, these machines 3.11"
    assert "3.10" not in allowed, "transformers 5.24 and mteb 2.26 need 3.11"
