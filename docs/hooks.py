"""mkdocs hooks: the pages generated from the code, so the docs cannot drift from it.

- ``<!-- generated: recipe-keys -->``: every recipe key, its type, the default of the dataclass and of each shipped
  recipe, and the comment that explains it (``pipeline/config.py``);
- ``<!-- generated: gate-checks -->``: every gate marker with its description (``gate.MARKERS``), its suite and the
  policy's thresholds with their comments (``quality/policy.yaml``);
- ``<!-- generated: secret-rules -->``: the scanners' own rule lists (``pipeline.secrets.rules_markdown``);
- ``results.md`` and ``img/serve.png``: bench/results, the one home of dated numbers, shown as they are.

``tests/test_docs.py`` checks the generators against the code and builds the site with ``mkdocs build --strict``.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def field_comments(cls) -> dict[str, str]:
    """Each dataclass field's comment: the comment lines just above it and the one at the end of its line."""
    comments, above = {}, []
    for line in textwrap.dedent(inspect.getsource(cls)).splitlines()[1:]:
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("# ").rstrip())
            continue
        match = re.match(r"^    (\w+): [^=]+?(?:=.*?)?(?:\s+#\s*(.*))?$", line)
        if match and not stripped.startswith("def "):
            comments[match.group(1)] = " ".join(above + ([match.group(2)] if match.group(2) else []))
        above = []
    return comments


def _value(value) -> str:
    import yaml

    return "`" + yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip() + "`"


def recipe_keys_markdown() -> str:
    """One table per recipe section: key, type, the dataclass default, each shipped recipe's value, what it does."""
    from pipeline.config import RECIPES_DIR, Recipe, load_recipe

    recipes = {path.stem: load_recipe(path.stem).to_dict() for path in sorted(RECIPES_DIR.glob("*.yaml"))}
    names = sorted(recipes, key=lambda n: (n != "default", n))
    out = []
    for section in dataclasses.fields(Recipe):
        if section.name == "name":
            continue
        cls = section.default_factory
        comments = field_comments(cls)
        out += [f"### `{section.name}`", "", "| key | type | " + " | ".join(names) + " | what it does |", "|---|---|" + "---|" * len(names) + "---|"]
        for f in dataclasses.fields(cls):
            kind = str(f.type).replace("|", "or")
            values = " | ".join(_value(recipes[n][section.name][f.name]) for n in names)
            out.append(f"| `{section.name}.{f.name}` | {kind} | {values} | {comments.get(f.name, '').replace('|', '/')} |")
        out.append("")
    return "\n".join(out).strip() + "\n"


def policy_thresholds() -> dict[str, list[tuple[str, str, str]]]:
    """quality/policy.yaml read with its comments: marker -> [(key, value, comment)]."""
    out: dict[str, list[tuple[str, str, str]]] = {}
    section, above = None, []
    for line in (ROOT / "quality" / "policy.yaml").read_text().splitlines():
        if re.match(r"^\w+:\s*$", line):
            section, above = line.rstrip(":"), []
            out[section] = []
        elif (match := re.match(r"^  (\w+):\s*([^#]+?)\s*(?:#\s*(.*))?$", line)) and section:
            out[section].append((match.group(1), match.group(2), " ".join(above + [match.group(3) or ""]).strip()))
            above = []
        elif line.strip().startswith("#") and section:
            above.append(line.strip().lstrip("# "))
    return out


def gate_checks_markdown() -> str:
    from pipeline.publishing.gate import MARKERS

    policy = policy_thresholds()
    rows = ["| marker | checks | suite | thresholds (`quality/policy.yaml`) |", "|---|---|---|---|"]
    for marker, description in MARKERS.items():
        limits = "<br>".join(f"`{key}: {value}`: {comment}" for key, value, comment in policy.get(marker, []))
        rows.append(f"| `{marker}` | {description} | `quality/test_{marker}.py` | {limits} |")
    return "\n".join(rows) + "\n"


def secret_rules_markdown() -> str:
    from pipeline.secrets import rules_markdown

    return rules_markdown() + "\n"


GENERATED = {"recipe-keys": recipe_keys_markdown, "gate-checks": gate_checks_markdown, "secret-rules": secret_rules_markdown}


def on_page_markdown(markdown: str, **kwargs) -> str:
    return re.sub(r"<!-- generated: ([\w-]+) -->", lambda m: GENERATED[m.group(1)](), markdown)


def on_files(files, config, **kwargs):
    from mkdocs.structure.files import File

    results = (ROOT / "bench" / "results" / "README.md").read_text()
    files.append(File.generated(config, "results.md", content=results))
    files.append(File.generated(config, "img/serve.png", abs_src_path=str(ROOT / "bench" / "results" / "serve.png")))
    return files
