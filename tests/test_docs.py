"""The README and the documentation site: the README stays a short user guide whose links resolve; the site's
generated pages (docs/hooks.py) hold every recipe key, gate check and secret rule the code has; the site builds
with `mkdocs build --strict` (what `make docs` and CI run)."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_is_a_short_guide_whose_links_resolve():
    text = README.read_text()
    assert len(text.splitlines()) <= 300, "README.md is a user guide of at most 300 lines: reference goes to docs/"
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    assert links, "the README links into docs/"
    missing = [link for link in links if not link.startswith("http") and not (ROOT / link).exists()]
    assert missing == []


def test_every_docs_page_is_in_the_site_navigation():
    import yaml

    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text().replace("!!python", "#"))

    def pages(nav) -> set[str]:
        out = set()
        for item in nav:
            for value in item.values() if isinstance(item, dict) else [item]:
                out |= pages(value) if isinstance(value, list) else {value}
        return out

    written = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert written | {"results.md"} == pages(config["nav"])  # results.md: bench/results/README.md, added by the hook


def test_the_recipe_page_lists_every_key_with_what_it_does():
    from pipeline.config import Recipe

    page = hooks().recipe_keys_markdown()
    rows = dict(re.findall(r"^\| `([\w.]+)` \|.*\| ([^|]*) \|$", page, flags=re.M))
    keys = {f"{section.name}.{f.name}" for section in dataclasses.fields(Recipe) if section.name != "name"
            for f in dataclasses.fields(section.default_factory)}
    assert set(rows) == keys
    assert [key for key, what in rows.items() if not what.strip()] == [], "a recipe key without a comment in config.py"


def test_field_comments_read_the_lines_above_and_the_line_itself():
    @dataclasses.dataclass
    class Example:
        # what a comes from,
        # on two lines
        a: int = 1  # and its end
        b: str = "x"
        c: list = dataclasses.field(default_factory=list)  # c's own

    assert hooks().field_comments(Example) == {"a": "what a comes from, on two lines and its end", "b": "", "c": "c's own"}


def test_the_gate_page_lists_every_marker_and_every_threshold():
    import yaml

    from pipeline.publishing.gate import MARKERS

    page = hooks().gate_checks_markdown()
    policy = yaml.safe_load((ROOT / "quality" / "policy.yaml").read_text())
    for marker, description in MARKERS.items():
        row = next(line for line in page.splitlines() if line.startswith(f"| `{marker}` |"))
        assert description in row and f"quality/test_{marker}.py" in row
        assert all(f"`{key}: {value}`" in row for key, value in policy[marker].items()), row


def test_the_secret_rules_page_is_the_scanners_own_list():
    from pipeline.secrets import rules_markdown
    from pipeline.secrets.catalog import RULES

    assert "<!-- generated: secret-rules -->" in (ROOT / "docs" / "secrets.md").read_text()
    page = hooks().on_page_markdown("<!-- generated: secret-rules -->")
    assert page.strip() == rules_markdown().strip() and all(f"`{rule.id}`" in page for rule in RULES)


def test_the_site_builds_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra (make install installs it)")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env={"NO_MKDOCS_2_WARNING": "1", "PATH": ""})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    recipes = (tmp_path / "site" / "recipes" / "index.html").read_text()
    assert "train.time_budget" in recipes and "<!-- generated" not in recipes
    assert (tmp_path / "site" / "results" / "index.html").is_file() and (tmp_path / "site" / "img" / "serve.png").is_file()


def readme_commands(text: str) -> list[str]:
    """Each `repotune ...` line of the README's shell blocks, without its comment."""
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [line.split("  #")[0].strip() for block in blocks for line in block.splitlines() if line.startswith("repotune ")]


def test_every_repotune_command_the_readme_shows_parses_as_written():
    """The README's and the docs' commands, as a user would paste them, are read by the CLI's own parser (argparse exits
    2 on an argument it cannot place: a query after the options of `repotune search` once was one)."""
    import shlex

    from pipeline.cli import parser

    commands = readme_commands(README.read_text())
    assert len(commands) >= 8
    commands += [c for page in sorted((ROOT / "docs").glob("*.md")) for c in readme_commands(page.read_text())]
    for command in commands:
        args = parser().parse_args(shlex.split(command)[1:])
        assert args.func is not None, command


def test_the_readme_command_check_fails_on_a_misplaced_argument():
    from pipeline.cli import parser

    with pytest.raises(SystemExit):
        parser().parse_args(["search", "runs/latest", "--mode", "dense", "-k", "10", "--json", "where is x"])
