"""The package's shape, kept so: no import circle among pipeline's modules (function-local imports count:
a circle hidden in a function is still one), and each fact defined once."""

from __future__ import annotations

import ast
from pathlib import Path

PIPELINE = Path(__file__).resolve().parents[1] / "pipeline"


def module_name(path: Path, root: Path = PIPELINE) -> str:
    """pipeline/ingest/chunk.py -> "ingest.chunk" (a package's __init__.py is the package)."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = PIPELINE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere in its file (relative imports at any level:
    ``from ..config import``, ``from . import syntax``), by their dotted names under ``pipeline``."""
    files = {module_name(p, root): p for p in root.rglob("*.py") if "quality" not in p.relative_to(root).parts}
    graph = {}
    for name, path in files.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                target = [*base, *(node.module.split(".") if node.module else [])]
                for alias in node.names:  # `from . import syntax` names a module; `from .x import y` names x (or x.y)
                    candidate = ".".join([*target, alias.name])
                    deps.add(candidate if candidate in files else ".".join(target))
        graph[name] = {d for d in deps if d in files and d != name and d != ""}
    return graph


def test_the_graph_reads_imports_across_sub_packages():
    graph = import_graph()
    assert {"ingest.chunk", "mining.pairs", "training.train", "build"} <= set(graph)
    assert "ingest.syntax" in graph["ingest.chunk"] and "records" in graph["ingest.chunk"]  # `from . import syntax`, `..records`
    assert {"ingest.workers", "mining.pairs"} <= graph["build"]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle_among_pipeline_modules():
    found = cycles(import_graph())
    assert found == [], f"import circles: {found}; move what both sides need into a module of its own"


# The layers, lowest first: a unit (a sub-package, or a top-level module) imports only from units of lower layers and
# from itself. The foundation (what every stage shares) at the bottom, the stages in the order a run takes them, the
# interfaces (the build, the local page, the gate's pytest plugin, the command line) on top.
LAYERS = [
    ("", "errors", "common"),  # "": the package itself, pipeline/__init__.py
    ("records", "config", "console"),
    ("stage", "models", "rundir"),
    ("secrets",),
    ("ingest",),
    ("mining",),
    ("dataset",),
    ("retrieval",),
    ("training",),
    ("evaluation",),
    ("publishing",),
    ("build", "serve"),
    ("cli",),
]


def upward_imports(graph: dict[str, set[str]], layers=LAYERS) -> list[str]:
    """Each import of a unit from its own layer or a higher one ("mining.pairs -> retrieval.search"), and each unit the
    layers do not place."""
    rank = {unit: n for n, layer in enumerate(layers) for unit in layer}
    unit = lambda module: module.split(".")[0]  # noqa: E731
    unplaced = sorted({f"{unit(m)} is in no layer" for m in graph if unit(m) not in rank})
    return unplaced + sorted(f"{m} -> {d}" for m, deps in graph.items() for d in deps
                             if unit(m) in rank and unit(d) in rank and unit(d) != unit(m) and rank[unit(d)] >= rank[unit(m)])


def test_the_layer_check_finds_an_upward_import():
    graph = {"mining.pairs": {"retrieval.search", "records"}, "retrieval.search": {"records"}, "records": set()}
    assert upward_imports(graph, [("records",), ("mining",), ("retrieval",)]) == ["mining.pairs -> retrieval.search"]
    assert upward_imports(graph, [("records",), ("retrieval",), ("mining",)]) == []
    assert upward_imports({"x.y": set()}, [("records",)]) == ["x is in no layer"]


def test_sub_packages_import_only_downward():
    """No cycle between sub-packages (a module-level check cannot see one that passes through several modules of
    each) and no import from a higher layer: the shared helpers live in ``common``, at the bottom."""
    assert upward_imports(import_graph()) == []


def test_modules_and_functions_stay_readable_or_say_why():
    """No module over ~350 lines unless its docstring says why ("Over 350 lines: ..."), no function over 80
    lines: a newcomer reads a module in one sitting and a function on one screen."""
    long_modules, long_functions = [], []
    for path in sorted(PIPELINE.rglob("*.py")):
        text = path.read_text()
        tree = ast.parse(text)
        if len(text.splitlines()) > 360 and "Over 350 lines:" not in (ast.get_docstring(tree) or ""):
            long_modules.append(path.relative_to(PIPELINE).as_posix())
        long_functions += [f"{path.relative_to(PIPELINE).as_posix()}:{node.name}" for node in ast.walk(tree)
                           if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno >= 80]
    assert not long_modules and not long_functions, (long_modules, long_functions)
