"""The `repotune` command line (DESIGN's contract): thin; each command calls one module."""

from __future__ import annotations

import argparse
import logging
import sys

from .config import RecipeError, load_recipe, recipe_from_dict

log = logging.getLogger("repotune")


def _recipe_for(args):
    return load_recipe(args.recipe, args.set or [])


def cmd_build(args) -> int:
    from .build import build

    manifest = build(args.repo, args.out, _recipe_for(args))
    c = manifest["counts"]
    print(f"built {args.out}: {c['files']} files, {c['chunks']} chunks, {c['train_pairs']} train / {c['holdout_pairs']} holdout pairs, "
          f"{c['secret_findings']} secrets redacted")
    return 0


def cmd_train(args) -> int:
    from .rundir import RunDir
    from .train import train

    run = RunDir(args.run)
    recipe = recipe_from_dict(run.read_recipe().to_dict(), args.set or [])
    run.config.write_text(recipe.to_yaml())
    manifest = train(args.run, recipe, resume=args.resume)
    t = manifest["train"]
    print(f"trained {args.run}/model: {t['steps']} steps, final train loss {t['final_train_loss']:.4f}, {t['seconds']} s")
    return 0


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate

    m = evaluate(args.run)
    h = m["holdout"]
    print(f"holdout nDCG@10: base {h['base']['ndcg@10']:.4f}, tuned {h['tuned']['ndcg@10']:.4f}, BM25 {h['bm25']['ndcg@10']:.4f}; "
          f"STS-B Spearman: base {m['sts']['base_spearman']:.4f}, tuned {m['sts']['tuned_spearman']:.4f}; "
          f"overfit gap {m['overfit_gap']:+.4f}. Report: {args.run}/report.md")
    return 0


def cmd_run(args) -> int:
    from .build import build
    from .train import train

    recipe = _recipe_for(args)
    build(args.repo, args.out, recipe)
    train(args.out, recipe)
    cmd_evaluate(argparse.Namespace(run=args.out))
    print(f"next: `repotune gate {args.out}` (or `pytest -m governance --run-dir {args.out}`), then `repotune publish`")
    return 0


def cmd_gate(args) -> int:
    from .gate import run_gate

    result = run_gate(args.run, args.policy)
    for c in result["checks"]:
        print(f"{'PASS' if c['passed'] else 'FAIL'}  {c['marker']:<17} {c['check']:<40} value {c['value']}  limit {c['limit']}")
    verdict = "passed" if result["passed"] else "FAILED"
    print(f"governance gate {verdict}: {sum(c['passed'] for c in result['checks'])}/{len(result['checks'])} checks; {args.run}/governance.json")
    return 0 if result["passed"] else 1


def cmd_publish(args) -> int:
    from .publish import publish, usage_text

    result = publish(args.run, args.model_repo, args.dataset_repo, public=args.public, dry_run=args.dry_run, create_pr=args.create_pr)
    if result["dry_run"]:
        for r in result["repos"]:
            print(f"would push {r['n_files']} files ({r['total_bytes']} bytes) from {args.run}/{r['folder']} to {r['repo_type']} "
                  f"{r['repo_id']} ({'private' if r['private'] else 'public'})")
        print(f"dry run: nothing was sent. Plan: {result['plan']}")
    else:
        print(usage_text(result))
    return 0


def cmd_pull(args) -> int:
    from .publish import pull

    r = pull(args.repo_id, args.out, revision=args.revision, dataset=args.dataset)
    use = (f'datasets.load_dataset("{r["path"]}", "pairs")' if args.dataset
           else f'SentenceTransformer("{r["path"]}"), or `repotune search {r["path"]} "query" --corpus PATH`')
    print(f"pulled {r['repo_type']} {r['repo_id']} at {r['sha']} into {r['path']}; use it offline: {use}")
    return 0


def cmd_search(args) -> int:
    from .publish import search, search_text

    print(search_text(search(args.model, args.query, corpus=args.corpus, k=args.k)))
    return 0


def _add_recipe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recipe", default="default", help="default | smoke | colab | path to a YAML recipe")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a recipe key, e.g. train.max_steps=2 (repeatable)")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="repotune", description="Tune a sentence-embedding model on a repository, behind a governance gate.")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging (every dropped file and its reason)")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="build, train and evaluate: REPO -> runs/NAME")
    p.add_argument("repo")
    p.add_argument("--out", required=True, help="run directory, e.g. runs/NAME")
    _add_recipe_args(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("build", help="collect .. dataset: REPO -> runs/NAME/dataset")
    p.add_argument("repo")
    p.add_argument("--out", required=True, help="run directory, e.g. runs/NAME")
    _add_recipe_args(p)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("train", help="fine-tune on runs/NAME's pairs -> runs/NAME/model")
    p.add_argument("run", help="run directory made by `repotune build`")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint (after a cut-off)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a recipe key, e.g. train.time_budget=20m")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="base vs tuned vs BM25 on the holdout, STS, MTEB -> metrics.json, report.md")
    p.add_argument("run")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("gate", help="run the governance suites (pytest -m governance) on runs/NAME -> governance.json")
    p.add_argument("run")
    p.add_argument("--policy", default=None, help="thresholds file (default: quality/policy.yaml)")
    p.set_defaults(func=cmd_gate)

    p = sub.add_parser("publish", help="push a gated run's model and dataset to the Hugging Face Hub (private by default)")
    p.add_argument("run", help="run directory with a passing, current governance.json (`repotune gate`)")
    p.add_argument("--model-repo", required=True, metavar="ORG/NAME", help="model repository on the Hub")
    p.add_argument("--dataset-repo", required=True, metavar="ORG/NAME", help="dataset repository on the Hub")
    p.add_argument("--public", action="store_true", help="create the repositories public (default: private)")
    p.add_argument("--dry-run", action="store_true", help="stage and scan the upload folders, write publish/plan.json, send nothing")
    p.add_argument("--create-pr", action="store_true", help="open each commit as a pull request instead of pushing to main")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("pull", help="download a published model (or dataset) at a revision for offline use")
    p.add_argument("repo_id", metavar="ORG/NAME")
    p.add_argument("--out", required=True, help="folder to download into")
    p.add_argument("--revision", help="branch, tag or commit sha (default: main)")
    p.add_argument("--dataset", action="store_true", help="the repository is a dataset")
    p.set_defaults(func=cmd_pull)

    p = sub.add_parser("search", help="top chunks for a query, by a model on disk")
    p.add_argument("model", help="a saved SentenceTransformer: runs/NAME/model or a folder made by `repotune pull`")
    p.add_argument("query")
    p.add_argument("--corpus", help="runs/NAME (its chunk corpus), a pulled dataset, or any folder (chunked on the fly); "
                                    "default: the model's own run")
    p.add_argument("-k", type=int, default=5, help="how many results")
    p.set_defaults(func=cmd_search)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from .build import BuildError
    from .collect import RepoError
    from .models import ModelError
    from .rundir import RunError
    from .evaluate import EvalError
    from .train import TrainError
    from .publish import PublishError

    try:
        return args.func(args)
    except (RecipeError, RepoError, BuildError, RunError, ModelError, TrainError, EvalError, PublishError) as err:
        print(f"repotune {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"repotune {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
