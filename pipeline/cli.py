"""The `repotune` command line (DESIGN's contract): thin; each command calls one module."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from .config import RecipeError, load_recipe, recipe_from_dict

log = logging.getLogger("repotune")


def _recipe_for(args) -> "Recipe":  # noqa: F821
    return load_recipe(args.recipe, args.set or [])


def cmd_build(args) -> int:
    from .build import build

    manifest = build(args.repo, args.out, _recipe_for(args))
    c = manifest["counts"]
    print(f"built {args.out}: {c['files']} files, {c['chunks']} chunks, {c['train_pairs']} train / {c['holdout_pairs']} holdout pairs, "
          f"{c['secret_findings']} secrets redacted")
    return 0


def _add_recipe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recipe", default="default", help="default | smoke | colab | path to a YAML recipe")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a recipe key, e.g. train.max_steps=2 (repeatable)")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="repotune", description="Tune a sentence-embedding model on a repository, behind a governance gate.")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging (every dropped file and its reason)")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("build", help="collect .. dataset: REPO -> runs/NAME/dataset")
    p.add_argument("repo")
    p.add_argument("--out", required=True, help="run directory, e.g. runs/NAME")
    _add_recipe_args(p)
    p.set_defaults(func=cmd_build)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from .build import BuildError
    from .collect import RepoError
    from .models import ModelError
    from .rundir import RunError

    try:
        return args.func(args)
    except (RecipeError, RepoError, BuildError, RunError, ModelError) as err:
        print(f"repotune {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"repotune {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
