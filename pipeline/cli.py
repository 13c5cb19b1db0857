"""The `repotune` command line (docs/cli.md): thin; each command calls one module."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from .common import is_rank0
from .config import load_recipe, recipe_from_dict

log = logging.getLogger("repotune")


def _recipe_for(args):
    return load_recipe(args.recipe, args.set or [])


def cmd_build(args) -> int:
    from .build import build
    from .rundir import RunDir

    run = RunDir(args.out)
    before = run.read_manifest().get("dataset_hash") if run.manifest.is_file() else None
    manifest = build(args.repo, args.out, _recipe_for(args))
    if before not in (None, manifest["dataset_hash"]) and (run.model / "modules.json").is_file():
        log.warning("the dataset in %s changed (%s -> %s): its model was trained on the old one, and evaluate, the gate and "
                    "publish refuse it until `repotune train %s --fresh`", run.root, before[:12], manifest["dataset_hash"][:12],
                    run.root)
    c, h = manifest["counts"], manifest["history"]
    why = f" ({h['reason']})" if h["reason"] else ""
    print(f"built {args.out}: {c['files']} files, {c['chunks']} chunks, {c['train_pairs']} train / {c['holdout_pairs']} holdout pairs, "
          f"{c['secret_findings']} secrets redacted; history: {h['kept']} of {h['commits_read']} commits kept, "
          f"{h['heldout_commits']} held out{why}")
    return 0


def cmd_train(args) -> int:
    from .rundir import RunDir
    from .training.train import train

    run = RunDir(args.run)
    recipe = recipe_from_dict(run.read_recipe().to_dict(), args.set or [])
    if is_rank0():  # torchrun: one writer
        run.config.write_text(recipe.to_yaml())
    manifest = train(args.run, recipe, resume=args.resume, fresh=args.fresh)
    if not is_rank0():  # torchrun: rank 0 reports
        return 0
    t = manifest["train"]
    print(f"trained {args.run}/model: {t['steps']} steps, final train loss {t['final_train_loss']:.4f}, {t['seconds']} s")
    return 0


def _show(metrics: dict, run: str, quiet: bool) -> None:
    from .console import final_line, summary

    print(final_line(metrics, run) if quiet else "\n".join(summary(metrics, run)))


def cmd_evaluate(args) -> int:
    from .config import RecipeError
    from .evaluation.evaluate import evaluate
    from .rundir import RunDir

    recipe = None
    if args.set:
        # only evaluate.* may change after the build: anything else would make config.yaml describe a dataset or
        # model the run does not hold
        wrong = [s for s in args.set if not s.startswith("evaluate.")]
        if wrong:
            raise RecipeError(f"`repotune evaluate --set` takes evaluate.* keys only (got {', '.join(wrong)}): the dataset and "
                              "model are built already; rebuild or retrain to change other keys")
        run = RunDir(args.run)
        recipe = recipe_from_dict(run.read_recipe().to_dict(), [_absolute_questions(s) for s in args.set])
        if recipe.evaluate.questions:  # at once, and before config.yaml names a set that is not there
            from .evaluation.questions import load_questions
            from .rundir import questions_path

            load_questions(questions_path(recipe.evaluate.questions, run.read_manifest()))
        run.config.write_text(recipe.to_yaml())  # the gate and a later `evaluate` see what this one used
    _show(evaluate(args.run, recipe), args.run, args.quiet)
    return 0


def _absolute_questions(override: str) -> str:
    """evaluate.questions=PATH given from the working directory, stored absolute so a later run from elsewhere finds it."""
    key, _, value = override.partition("=")
    if key == "evaluate.questions" and value and Path(value).expanduser().is_file():
        return f"{key}={Path(value).expanduser().resolve()}"
    return override


def cmd_run(args) -> int:
    import time

    from .build import build
    from .evaluation.evaluate import evaluate
    from .training.train import train

    recipe = _recipe_for(args)
    start = time.perf_counter()
    c = build(args.repo, args.out, recipe)["counts"]
    log.info("built %s: %d files, %d chunks, %d train / %d holdout pairs, %d secrets redacted (%.0f s)", args.out, c["files"],
             c["chunks"], c["train_pairs"], c["holdout_pairs"], c["secret_findings"], time.perf_counter() - start)
    start = time.perf_counter()
    # a run directory that holds a training continues it (the same dataset and recipe) or refuses, unless --fresh
    t = train(args.out, recipe, resume=not args.fresh, fresh=args.fresh)["train"]
    log.info("trained %s/model: %d steps, final train loss %.4f (%.0f s)", args.out, t["steps"], t["final_train_loss"], time.perf_counter() - start)
    start = time.perf_counter()
    metrics = evaluate(args.out)
    log.info("evaluated %s (%.0f s)", args.out, time.perf_counter() - start)
    _show(metrics, args.out, args.quiet)
    return 0


def cmd_gate(args) -> int:
    from .publishing.gate import run_gate

    result = run_gate(args.run, args.policy)
    for c in result["checks"]:
        print(f"{'PASS' if c['passed'] else 'FAIL'}  {c['marker']:<17} {c['check']:<40} value {c['value']}  limit {c['limit']}")
    verdict = "passed" if result["passed"] else "FAILED"
    print(f"governance gate {verdict}: {sum(c['passed'] for c in result['checks'])}/{len(result['checks'])} checks; {args.run}/governance.json")
    return 0 if result["passed"] else 1


def cmd_publish(args) -> int:
    from .publishing.publish import publish, usage_text

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
    from .publishing.hub import pull

    r = pull(args.repo_id, args.out, revision=args.revision, dataset=args.dataset)
    use = (f'datasets.load_dataset("{r["path"]}", "pairs")' if args.dataset
           else f'SentenceTransformer("{r["path"]}"), or `repotune search {r["path"]} "query" --corpus PATH`')
    print(f"pulled {r['repo_type']} {r['repo_id']} at {r['sha']} into {r['path']}; use it offline: {use}")
    return 0


def cmd_search(args) -> int:
    import json

    from .retrieval.search import SearchError, search, search_text

    queries = [args.query] if args.query else []
    if args.queries:
        try:
            queries += [line.strip() for line in Path(args.queries).read_text(encoding="utf-8").splitlines() if line.strip()]
        except OSError as err:
            raise SearchError(f"cannot read --queries {args.queries}: {err.strerror}; give a text file with one query per line") from err
    result = search(args.model, queries, corpus=args.corpus, k=args.k, mode=args.mode)
    print(json.dumps(result, indent=1, ensure_ascii=False) if args.json else search_text(result))
    return 0


def cmd_serve(args) -> int:
    from .serve import serve

    serve(args.run, host=args.host, port=args.port)
    return 0


def cmd_questions_draft(args) -> int:
    from .evaluation.drafts import draft_questions

    r = draft_questions(args.run)
    plural = {"heading": "headings", "mention": "mentions", "history": "the history"}
    sources = ", ".join(f"{n} from {plural.get(name, name)}" for name, n in r["by_source"].items())
    print(f"drafted {r['n']} candidate questions ({sources}) into {r['path']}; none counts until kept: review them with "
          f"`repotune serve {args.run}` (label a question set)")
    return 0


def _add_recipe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recipe", default="default", help="default | smoke | colab | path to a YAML recipe")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a recipe key, e.g. train.max_steps=2 (repeatable)")


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("repotune")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="repotune", description="Tune a sentence-embedding model on a repository, behind a governance gate.")
    ap.add_argument("-v", "--verbose", action="store_true", help="debug logging (every dropped file and its reason), "
                                                                  "and other libraries' logs, progress bars and warnings")
    ap.add_argument("-q", "--quiet", action="store_true", help="errors and the final line only")
    ap.add_argument("--version", action="version", version=f"repotune {_version()}")
    sub = ap.add_subparsers(dest="command", required=True)
    _pipeline_commands(sub)
    _sharing_commands(sub)
    return ap


def _pipeline_commands(sub) -> None:
    """run, build, train, evaluate, gate: a repository to a gated model."""
    p = sub.add_parser("run", help="build, train and evaluate: REPO -> runs/NAME")
    p.add_argument("repo")
    p.add_argument("--out", required=True, help="run directory, e.g. runs/NAME")
    p.add_argument("--fresh", action="store_true", help="delete the checkpoints a run directory holds and train from the "
                                                        "start (without it, a training there is continued, or refused "
                                                        "when its dataset or recipe changed)")
    _add_recipe_args(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("build", help="collect .. dataset: REPO -> runs/NAME/dataset")
    p.add_argument("repo")
    p.add_argument("--out", required=True, help="run directory, e.g. runs/NAME")
    _add_recipe_args(p)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("train", help="fine-tune on runs/NAME's pairs -> runs/NAME/model")
    p.add_argument("run", help="run directory made by `repotune build`")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--resume", action="store_true", help="continue from the newest checkpoint (after a cut-off); "
                                                           "trains from the start when there is none")
    how.add_argument("--fresh", action="store_true", help="delete the run's checkpoints and train from the start")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a recipe key, e.g. train.time_budget=20m")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="base vs tuned vs BM25 on the holdout, STS, MTEB -> metrics.json, report.md")
    p.add_argument("run")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override an evaluate.* key, e.g. evaluate.questions=PATH (a question set labelled later); "
                        "kept in the run's config.yaml")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("gate", help="run the governance suites (pytest -m governance) on runs/NAME -> governance.json")
    p.add_argument("run")
    p.add_argument("--policy", default=None, help="thresholds file (default: quality/policy.yaml)")
    p.set_defaults(func=cmd_gate)


def _sharing_commands(sub) -> None:
    """publish, pull, search, serve, questions: a model out to the Hub, back, and in use."""
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
    p.add_argument("model", help="a saved SentenceTransformer: runs/NAME/model (or the run directory runs/NAME) or a folder "
                                 "made by `repotune pull`")
    p.add_argument("query", nargs="?", help="one query (or --queries FILE)")
    p.add_argument("--queries", metavar="FILE", help="many queries, one per line, answered at once")
    p.add_argument("--mode", choices=("dense", "bm25", "hybrid"), default="hybrid",
                   help="dense model, BM25, or both fused (default: hybrid, the best on the question sets)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--corpus", help="runs/NAME (its chunk corpus), a pulled dataset, or any folder (chunked on the fly); "
                                    "default: the model's own run")
    p.add_argument("-k", type=int, default=5, help="how many results")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("serve", help="a local page: base vs tuned vs hybrid side by side, and the run's report")
    p.add_argument("run", help="a run directory with a trained model")
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: this machine only)")
    p.add_argument("--port", type=int, default=7860)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("questions", help="question sets: `questions draft` proposes candidates to label in `repotune serve`")
    q = p.add_subparsers(dest="action", required=True)
    d = q.add_parser("draft", help="candidate questions from the run's chunks (doc headings, doc sentences naming a definition) "
                                   "-> runs/NAME/questions.drafts.jsonl")
    d.add_argument("run", help="a run directory made by `repotune build`")
    d.set_defaults(func=cmd_questions_draft)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.verbose:
        # other libraries' own tqdm bars (sentence-transformers' model-card widget examples, ...): tqdm reads
        # this when it is first imported, which is below; repotune's own bars say `disable` explicitly
        os.environ.setdefault("TQDM_DISABLE", "1")
    from .console import configure

    configure(verbose=args.verbose, quiet=args.quiet)
    from .errors import RepotuneError

    try:
        return args.func(args)
    except RepotuneError as err:
        print(f"repotune {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        run = getattr(args, "run", None) or getattr(args, "out", None)
        hint = f": `repotune train {run} --resume` continues from the newest checkpoint" if args.command in ("train", "run") else ""
        print(f"repotune {args.command}: interrupted{hint}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
