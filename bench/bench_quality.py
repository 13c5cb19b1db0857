"""bench-quality: does repotune make search better for the questions people type, on repositories that
are not this one? Per source and averaged, each figure with its sample size and 95 % bootstrap interval.

Sources: the git repositories of bench/sources.py ``GIT``, cloned with their history (requests, click,
mongoose, gin, and llm and huh, first committed in 2023, after the base model's training data), each
with a question set written in a user's words (``bench/questions/NAME.jsonl``, the repository's own
paths), and this repository with ``quality/questions.jsonl`` (reported, never averaged: its sets chose
the defaults). For each source and variant (the default recipe, or a lever switched on), ``repotune
run`` builds, trains and evaluates into ``runs/bench/<source>-<variant>`` (kept: a later invocation
only adds what is missing). Then, per run:

- **tuning alone**: tuned − base, both embedding the same text (the run's ``metrics.json`` question set);
- **the default search** (the tuned hybrid, what ``repotune search`` does) against **plain base MiniLM
  dense**: the base model on the chunks' text alone (no header), at its own 256-token window;
- **the history yardstick** (held-out commits as queries: tuned − base), **STS-B** (tuned − base
  Spearman), the holdout gain, and wall time;
- the WiSE-FT merge measured post hoc: the tuned weights merged with the base's at alpha 0.5
  (``train.merge_alpha``'s arithmetic), on the same text, minus base (no retraining needed).

Averages run over the sources that are not this repository, and over the post-2023 sources alone;
their intervals resample the questions within each set.

    python -m bench.bench_quality                                  # every source, default recipe (~1.5 h on 2 cores)
    python -m bench.bench_quality --sources llm huh --variants default gist
    python -m bench.bench_quality --sources llm huh --variants mnrl gist soup --against mnrl   # levers against the old default
    python -m bench.bench_quality --sources charmlog t3env fd      # issue 34's transfer sets (bench/sources.py TRANSFER)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from bench import sources
from bench.common import ROOT, run_cli, save
from pipeline.evaluation.metrics import bootstrap_interval

QUESTIONS = ROOT / "bench" / "questions"
# bounds on what a source's run reads, where the whole repository would cost hours on 2 cores
SOURCE_SETS = {
    # 11,000 of its 23,000 chunks are tests, 2,200 the changelog: lib/, types/, docs/ and the rest stay
    "mongoose": ["collect.exclude=[runs/**,.venv/**,test/**,CHANGELOG.md,History.md]"],
}
# A variant's overrides on top of the default recipe. Those that name a loss pin what they were measured as (the
# earlier defaults had no hard negatives), so their cached runs keep their meaning when the default recipe changes;
# a cached run whose recipe is not its variant's any more is trained again (ensure_run).
PLAIN = ["pairs.hard_negatives=0"]  # the pairs as mined, no negative column: what the loss levers were measured on
VARIANTS = {
    "default": [],  # the default recipe: since 2026-12-07 the soup with a hard negative a pair
    "mnrl": ["train.loss=mnrl", *PLAIN],  # the default until 2026-12-06
    "nocontext": ["train.loss=mnrl", *PLAIN, "chunk.context=false"],
    "nohistory": ["train.loss=mnrl", *PLAIN, "history.pairs=false"],
    "gist": ["train.loss=gist", *PLAIN],
    "gist05": ["train.loss=gist", *PLAIN, "train.temperature=0.05"],  # GIST at MNRL's temperature (scale 20)
    "mnrl01": ["train.loss=mnrl", *PLAIN, "train.temperature=0.01"],  # MNRL at GIST's temperature (scale 100)
    "gistap": ["train.loss=gist", *PLAIN, "train.gist_same_side=false"],  # GIST's masking on MNRL's one term
    "merge": ["train.dev_fraction=0.1", "train.merge_alpha=auto"],
    "upsample": ["pairs.balance=upsample"],
    "soup": ["train.loss=soup", *PLAIN],  # assembled from the mnrl and gist runs (soup_run), not trained again
    "souphn": ["train.loss=soup", "pairs.hard_negatives=1"],  # the soup trained, each pair with a mined negative
    "lr1e4": ["train.learning_rate=1e-4"],  # twice the step size: small sources train 6-30 steps an ingredient
    "epochs3": ["train.epochs=3"],  # more steps where the data allows (the time budget still caps them)
    "bf16train": ["train.precision=bf16"],  # training under bf16 autocast: on a CPU with AVX512-BF16, 1.5x the fp32 step rate
}
MERGED = (0.5,)  # train.merge_alpha measured post hoc on each default run (no retraining)
EXPAND = 5  # history.expand measured post hoc on each run: the hybrid's BM25 reads up to 5 training commit subjects a chunk
PLAIN_TOKENS = 256  # plain base MiniLM: its own window (all-MiniLM-L6-v2's max_seq_length)
RUNS = ROOT / "runs" / "bench"
TARGETS = {"tuning alone, post-2023": 0.05, "tuning alone, all": 0.03, "default search, all": 0.12}


def source_tree(source: str) -> Path:
    return ROOT if source == "repotune" else sources.checkout(source)


def question_set(source: str) -> Path:
    return ROOT / "quality" / "questions.jsonl" if source == "repotune" else QUESTIONS / f"{source}.jsonl"


def ensure_run(source: str, variant: str) -> Path:
    import shutil

    from pipeline.config import load_recipe
    from pipeline.rundir import RunDir

    out = RUNS / f"{source}-{variant}"
    overrides = [f"evaluate.questions={question_set(source)}", "evaluate.mteb=false", *SOURCE_SETS.get(source, []),
                 *VARIANTS[variant]]
    if (out / "metrics.json").is_file():
        if RunDir(out).read_recipe().to_dict() == load_recipe("default", overrides).to_dict():
            return out
        print(f"bench-quality: {out} was trained on another recipe than {variant}'s today: training it again",
              file=sys.stderr, flush=True)
        shutil.rmtree(out)
    if variant == "soup":
        return soup_run(source, out)
    print(f"bench-quality: {source} / {variant} ...", file=sys.stderr, flush=True)
    wall, peak = run_cli("run", str(source_tree(source)), "--out", str(out), *[x for s in overrides for x in ("--set", s)])
    (out / "bench.json").write_text(json.dumps({"wall_s": round(wall, 1), "peak_rss_mb": round(peak, 1)}))
    return out


def soup_run(source: str, out: Path) -> Path:
    """``train.loss: soup`` without training again. What it saves is the mean of the weights that MNRL and GIST
    reach apart (each ingredient is that run trained alone, the same pairs, seed and batches:
    tests/training/test_train.py), so the mnrl and gist runs' weights are averaged into a copy of the mnrl
    run, which ``repotune evaluate`` scores. Each ingredient had the whole time budget, where the recipe's soup
    gives each half: on a source whose budget cut a run's steps (the steps column), the recipe trains fewer."""
    import shutil

    from sentence_transformers import SentenceTransformer

    from pipeline.rundir import RunDir
    from pipeline.training.merge import merged_state
    from pipeline.training.train import save_model

    runs = [ensure_run(source, v) for v in ("mnrl", "gist")]
    print(f"bench-quality: {source} / soup (the mnrl and gist runs' weights averaged) ...", file=sys.stderr, flush=True)
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(runs[0], out, ignore=shutil.ignore_patterns("checkpoints", "model", "index", "metrics.json", "report.md",
                                                                "governance.json", "bench.json"))
    run = RunDir(out)
    recipe = run.read_recipe()
    recipe.train.loss = "soup"
    run.config.write_text(recipe.to_yaml())
    mnrl, gist = (SentenceTransformer(str(r / "model"), local_files_only=True) for r in runs)
    mnrl.load_state_dict(merged_state(mnrl.state_dict(), gist.state_dict(), 0.5))
    save_model(run, mnrl, recipe)
    trained = [json.loads((r / "manifest.json").read_text())["train"] for r in runs]
    run.update_manifest(train=trained[0] | {"loss": f"soup of {trained[0]['loss']} and {trained[1]['loss']}",
                                            "steps": sum(t["steps"] for t in trained),
                                            "ingredients": {t["loss"]: {"steps": t["steps"]} for t in trained}},
                        model_hash=run.model_hash())
    _, peak = run_cli("evaluate", str(out))
    # the recipe's run, estimated: the mnrl run's (build, MNRL's training, evaluation) and GIST's training
    wall = json.loads((runs[0] / "bench.json").read_text())["wall_s"] + trained[1]["seconds"]
    (out / "bench.json").write_text(json.dumps({"wall_s": round(wall, 1), "peak_rss_mb": round(peak, 1), "assembled": True}))
    return out


def _scored(run: Path, model, context: bool) -> list[float]:
    """nDCG@10 of each question of the run's set, by ``model`` dense over the run's corpus."""
    from pipeline.common import row_text
    from pipeline.dataset import load_corpus
    from pipeline.evaluation.questions import load_questions, score_questions
    from pipeline.retrieval.search import dense_scores
    from pipeline.rundir import RunDir

    rundir = RunDir(run)
    rows = list(load_corpus(rundir))
    questions = load_questions(rundir.read_recipe().evaluate.questions)
    scores = {"m": dense_scores(model, [row_text(r, context) for r in rows], [q.query for q in questions], 64, RUNS / "index")}
    return [p["ndcg@10"]["m"] for p in score_questions(questions, rows, scores, "bench")["per_question"]]


def _base(run: Path):
    from sentence_transformers import SentenceTransformer

    from pipeline.models import resolve_model
    from pipeline.rundir import RunDir

    return SentenceTransformer(resolve_model(RunDir(run).read_recipe().train.base_model), local_files_only=True)


def plain_base(run: Path) -> list[float]:
    """Plain base MiniLM dense: the chunks' text alone (no header), at its own 256-token window."""
    base = _base(run)
    base.max_seq_length = PLAIN_TOKENS
    return _scored(run, base, False)


def merged(run: Path, alpha: float) -> list[float]:
    """The run's tuned weights merged with its base's at ``alpha`` (WiSE-FT, ``train.merged_state``: what
    ``train.merge_alpha`` saves), on the run's own text and window: the merge lever without a retraining."""
    from sentence_transformers import SentenceTransformer

    from pipeline.rundir import RunDir
    from pipeline.training.merge import merged_state

    recipe = RunDir(run).read_recipe()
    tuned, base = SentenceTransformer(str(run / "model"), local_files_only=True), _base(run)
    tuned.load_state_dict(merged_state(tuned.state_dict(), base.state_dict(), alpha))
    tuned.max_seq_length = recipe.train.max_seq_length
    return _scored(run, tuned, recipe.chunk.context)


def expanded(run: Path, cap: int) -> tuple[list[float], int]:
    """The run's tuned hybrid with its BM25 side reading each chunk's training commit subjects
    (``history.expand`` at ``cap``, ``search.Index`` as `repotune search` builds it); the dense side is
    the run's own (its stored corpus embeddings): the chunk expansion without a rebuild."""
    from sentence_transformers import SentenceTransformer

    from pipeline.dataset import load_corpus
    from pipeline.evaluation.questions import load_questions, score_questions
    from pipeline.retrieval.search import Index, run_subjects
    from pipeline.rundir import RunDir

    rundir = RunDir(run)
    recipe, rows = rundir.read_recipe(), list(load_corpus(rundir))
    questions = load_questions(recipe.evaluate.questions)
    tuned = SentenceTransformer(str(run / "model"), local_files_only=True)
    tuned.max_seq_length = recipe.train.max_seq_length
    subjects = run_subjects(run, cap)
    index = Index(tuned, rows, recipe.chunk.context, run / "index", recipe.evaluate.hybrid_alpha, subjects)
    scores = {"m": index.scores([q.query for q in questions], "hybrid")}
    return [p["ndcg@10"]["m"] for p in score_questions(questions, rows, scores, "bench")["per_question"]], len(subjects)


def per_question(section: dict, system: str) -> list[float]:
    return [p["ndcg@10"][system] for p in section["per_question"]]


def figures(run: Path) -> dict:
    """The run's per-question arrays (question set and history) and its scalar figures."""
    metrics = json.loads((run / "metrics.json").read_text())
    manifest = json.loads((run / "manifest.json").read_text())
    q, h = metrics["questions"], metrics["history"]
    out = {"n": q["n"], "corpus": q["corpus"],
           "q": {name: per_question(q, name) for name in ("base", "tuned", "hybrid", "bm25")},
           "history_n": h.get("n", 0), "history": {name: per_question(h, name) for name in ("base", "tuned")} if h.get("n") else None,
           "sts_delta": round(metrics["sts"]["tuned_spearman"] - metrics["sts"]["base_spearman"], 4),
           "holdout_gain": round(metrics["holdout"]["tuned"]["ndcg@10"] - metrics["holdout"]["base"]["ndcg@10"], 4),
           "holdout_ci": metrics.get("holdout_delta_ci"), "holdout_queries": metrics["holdout_size"]["queries"],
           "train_pairs": manifest["counts"]["train_pairs"], "steps": manifest.get("train", {}).get("steps"),
           "history_kept": manifest.get("history", {}).get("kept"),
           **(json.loads((run / "bench.json").read_text()) if (run / "bench.json").is_file() else {})}
    out["q"]["plain"] = plain_base(run)
    for alpha in MERGED:
        out["q"][f"merged@{alpha}"] = merged(run, alpha)
    out["q"]["expanded"], out["expanded_chunks"] = expanded(run, EXPAND)
    return out


def delta(pairs: list[tuple[list[float], list[float]]]) -> dict:
    """Mean over sets of mean(b − a), with the interval resampling questions within each set."""
    diffs = [np.asarray(b) - np.asarray(a) for a, b in pairs]
    return {"delta": round(float(np.mean([d.mean() for d in diffs])), 4),
            "ci": bootstrap_interval(diffs, weights=[1 / len(diffs)] * len(diffs)),
            "below": round(float(min(d.mean() for d in diffs)), 4)}


def summary(figs: dict[str, dict]) -> dict:
    """The three question-set figures and the history yardstick over ``figs`` (source -> figures)."""
    have_h = [f for f in figs.values() if f["history"]]
    return {"tuning_alone": delta([(f["q"]["base"], f["q"]["tuned"]) for f in figs.values()]),
            "default_search": delta([(f["q"]["plain"], f["q"]["hybrid"]) for f in figs.values()]),
            "tuned_vs_plain": delta([(f["q"]["plain"], f["q"]["tuned"]) for f in figs.values()]),
            "expansion": delta([(f["q"]["hybrid"], f["q"]["expanded"]) for f in figs.values()]),
            "default_search_expanded": delta([(f["q"]["plain"], f["q"]["expanded"]) for f in figs.values()]),
            **{f"tuning_alone_merged@{a}": delta([(f["q"]["base"], f["q"][f"merged@{a}"]) for f in figs.values()]) for a in MERGED},
            "history": delta([(f["history"]["base"], f["history"]["tuned"]) for f in have_h]) if have_h else None,
            "sts_delta": round(float(np.mean([f["sts_delta"] for f in figs.values()])), 4),
            "sources": list(figs), "questions": sum(f["n"] for f in figs.values())}


def _ci(ci: list[float]) -> str:
    return f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"


def _cell(a: list[float], b: list[float]) -> str:
    d = delta([(a, b)])
    return f"{np.mean(a):.3f} → {np.mean(b):.3f}, {d['delta']:+.3f} {_ci(d['ci'])}"


def _avg_cell(s: dict | None) -> str:
    return f"{s['delta']:+.3f} {_ci(s['ci'])} (lowest set {s['below']:+.3f})" if s else "–"


def table(variant: str, figs: dict[str, dict], averages: dict[str, dict]) -> list[str]:
    rows = [f"### {variant}", "",
            "| source (first commit) | questions | tuning alone: base → tuned, Δ [95 % CI] | default search: plain base → "
            "hybrid, Δ [95 % CI] | " + " | ".join(f"merged α {a}: base → merged, Δ [95 % CI]" for a in MERGED)
            + f" | expansion ({EXPAND} subjects, BM25 side): hybrid → expanded, Δ [95 % CI]"
            + " | history yardstick (n): Δ [95 % CI] | STS-B Δ | holdout Δ (queries) | train pairs (steps) | minutes |",
            "|---|---|---|---|" + "---|" * len(MERGED) + "---|---|---|---|---|---|"]
    for source, f in figs.items():
        first = sources.with_history(source)[3] if source != "repotune" else "this repository"
        hist = f"({f['history_n']}) {_cell(f['history']['base'], f['history']['tuned'])}" if f["history"] else "–"
        rows.append(f"| {source} ({first}) | {f['n']} | {_cell(f['q']['base'], f['q']['tuned'])} | "
                    f"{_cell(f['q']['plain'], f['q']['hybrid'])} | "
                    + "".join(f"{_cell(f['q']['base'], f['q'][f'merged@{a}'])} | " for a in MERGED)
                    + f"{_cell(f['q']['hybrid'], f['q']['expanded'])} | {hist} | {f['sts_delta']:+.4f} | "
                    f"{f['holdout_gain']:+.3f} ({f['holdout_queries']}) | {f['train_pairs']} ({f['steps']}) | "
                    f"{f.get('wall_s', float('nan')) / 60:.1f} |")
    for name, s in averages.items():
        rows.append(f"| **average, {name}** ({len(s['sources'])} sets, {s['questions']} questions) | | "
                    f"{_avg_cell(s['tuning_alone'])} | {_avg_cell(s['default_search'])} | "
                    + "".join(f"{_avg_cell(s[f'tuning_alone_merged@{a}'])} | " for a in MERGED)
                    + f"{_avg_cell(s['expansion'])} | {_avg_cell(s['history'])} | "
                    f"{s['sts_delta']:+.4f} | | | |")
    return rows


def lever_deltas(default: dict[str, dict], lever: dict[str, dict]) -> dict:
    """A lever against the default recipe on the same questions (the base is the same model): its tuned model
    and its hybrid, each minus the default's, per set and averaged over the sets other than this repository."""
    external = [s for s in lever if s != "repotune"]
    return {system: {"average": delta([(default[s]["q"][system], lever[s]["q"][system]) for s in external]),
                     "per_source": {s: delta([(default[s]["q"][system], lever[s]["q"][system])])["delta"] for s in lever}}
            for system in ("tuned", "hybrid")}


def against(deltas: dict[str, dict], reference: str) -> list[str]:
    """The table of ``lever_deltas`` for each lever, against the ``reference`` variant."""
    rows = [f"### each lever − {reference}, paired (same questions)", "",
            f"| lever | tuned − {reference}'s tuned: average [95 % CI] (lowest set) | per set | hybrid − {reference}'s hybrid: "
            "average [95 % CI] (lowest set) | per set |", "|---|---|---|---|---|"]
    for variant, d in deltas.items():
        rows.append(f"| {variant} | " + " | ".join(
            f"{_avg_cell(d[system]['average'])} | " + ", ".join(f"{s} {v:+.3f}" for s, v in d[system]["per_source"].items())
            for system in ("tuned", "hybrid")) + " |")
    return rows + [""]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sources", nargs="*", default=[*sources.GIT, "repotune"])
    ap.add_argument("--variants", nargs="*", default=["default"], choices=list(VARIANTS))
    ap.add_argument("--against", default="default", choices=list(VARIANTS),
                    help="the variant the others are paired against (one of --variants; e.g. mnrl, the default until 2026-12-06)")
    args = ap.parse_args()
    result: dict = {"sources": {s: {"questions": str(question_set(s).relative_to(ROOT)),
                                    "revision": sources.with_history(s)[2] if s != "repotune" else "HEAD"} for s in args.sources},
                    "plain_tokens": PLAIN_TOKENS, "variants": {}}
    rows = ["nDCG@10 on each source's question set over its run's whole chunk corpus. **Tuning alone**: tuned − base, "
            "both embedding the same text (the run's recipe). **Default search**: the tuned hybrid (`repotune search`) − "
            f"plain base MiniLM dense (the chunk's text alone, {PLAIN_TOKENS} tokens). History yardstick: the held-out "
            "commits' subjects as queries, tuned − base. Intervals: 95 % paired bootstrap; averages resample questions "
            "within each set. Averages leave out this repository (its sets chose the defaults).", ""]
    by_variant = {}
    for variant in args.variants:
        figs = by_variant[variant] = {s: figures(ensure_run(s, variant)) for s in args.sources}
        external = {s: f for s, f in figs.items() if s != "repotune"}
        recent = {s: f for s, f in external.items() if sources.post_2023(s)}
        averages = {name: summary(group) for name, group in (("all", external), ("post-2023", recent)) if group}
        result["variants"][variant] = {
            "per_source": {s: {k: v for k, v in f.items() if k not in ("q", "history")} | {
                "tuning_alone": delta([(f["q"]["base"], f["q"]["tuned"])]),
                "default_search": delta([(f["q"]["plain"], f["q"]["hybrid"])]),
                "expansion": delta([(f["q"]["hybrid"], f["q"]["expanded"])]),
                "history": delta([(f["history"]["base"], f["history"]["tuned"])]) if f["history"] else None,
                "ndcg@10": {k: round(float(np.mean(v)), 4) for k, v in f["q"].items()}} for s, f in figs.items()},
            "averages": averages}
        rows += table(variant, figs, averages) + [""]
        if variant == "default" and set(sources.GIT) <= set(figs):  # the targets are over every source
            got = {"tuning alone, post-2023": averages.get("post-2023", {}).get("tuning_alone", {}).get("delta"),
                   "tuning alone, all": averages["all"]["tuning_alone"]["delta"],
                   "default search, all": averages["all"]["default_search"]["delta"]}
            rows += ["Targets (issue 22): " + "; ".join(
                f"{k} ≥ {t:+.2f}: {'–' if got[k] is None else f'{got[k]:+.3f}, ' + ('met' if got[k] >= t else f'missed by {t - got[k]:.3f}')}"
                for k, t in TARGETS.items()), ""]
    # the default recipe's table has its section; a lever run alone gets its own, beside it (not over it)
    levers = [v for v in args.variants if v != args.against]
    if args.against in by_variant and levers:
        result["against"] = {"reference": args.against} | {v: lever_deltas(by_variant[args.against], by_variant[v]) for v in levers}
        rows += against({v: result["against"][v] for v in levers}, args.against)
    transfer = set(args.sources) & set(sources.TRANSFER)  # issue 34's blind sets: a section of their own
    save(("quality: transfer sets (issue 34), " + ", ".join(sorted(transfer)) if transfer
          else "quality: question sets on repositories with their history") + (f", levers {', '.join(levers)}" if levers else ""),
         result, rows)


if __name__ == "__main__":
    main()
