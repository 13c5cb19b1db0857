"""Search-side levers, measured post hoc on bench-quality's default runs (no retraining): which text each
chunk is embedded as, which models are fused, and how. Each system's nDCG@10 on the source's question
set against plain base MiniLM dense (the chunk's text alone, 256 tokens) and against the default search
(the tuned hybrid), per source and averaged, with 95 % paired bootstrap intervals.

Systems (dense scores are cosines; ``hybrid(x)`` is ``search.fuse(x, BM25, alpha)``, the default search's rule):

- ``default``: hybrid(tuned, header, 128 tokens) at the recipe's alpha, what ``repotune search`` does;
- ``alpha A``: the same at another dense weight;
- ``two views``: hybrid(mean of the tuned model's cosines on the chunk with and without its header);
- ``tuned + base``: hybrid(mean of the tuned model's cosines (header) and plain base's);
- ``three``: hybrid(mean of tuned with header, tuned plain and base plain);
- ``base, header``: hybrid(base, header), no tuning;
- ``rrf``: reciprocal rank fusion (k 60) of tuned, plain base and BM25.

``--header-forms`` measures instead the header's form (issue 22): base MiniLM dense at the training window, the chunk
under a header holding its path and symbol (the default's), its path alone, its symbol alone, or none; untuned, so
the form is judged apart from what training learnt under the default's.

    python -m bench.search_levers --sources huh llm gin      # after bench-quality's default runs of them
    python -m bench.search_levers --header-forms --sources requests click gin huh llm
"""

from __future__ import annotations

import argparse

import numpy as np

from bench import bench_quality as bq
from bench.common import save

ALPHAS = (0.6, 0.7, 0.9)


def rrf(*scores: np.ndarray, k: int = 60) -> np.ndarray:
    """Reciprocal rank fusion: sum over rankers of 1 / (k + rank)."""
    return sum(1.0 / (k + 1 + np.argsort(np.argsort(-s, axis=1), axis=1)) for s in scores)


def systems(run) -> dict[str, list[float]]:
    """Per-question nDCG@10 of every system over ``run``'s corpus and question set."""
    from sentence_transformers import SentenceTransformer

    from pipeline.common import row_text
    from pipeline.dataset import load_corpus
    from pipeline.evaluation.questions import load_questions, score_questions
    from pipeline.retrieval.search import bm25_scores, dense_scores, fuse
    from pipeline.rundir import RunDir

    rundir = RunDir(run)
    recipe, rows = rundir.read_recipe(), list(load_corpus(rundir))
    questions = load_questions(recipe.evaluate.questions)
    queries, alpha = [q.query for q in questions], recipe.evaluate.hybrid_alpha
    header, plain = [row_text(r, True) for r in rows], [row_text(r, False) for r in rows]
    base, tuned = bq._base(run), SentenceTransformer(str(run / "model"), local_files_only=True)

    def cosines(model, texts, tokens):
        model.max_seq_length = tokens
        return dense_scores(model, texts, queries, 64, bq.RUNS / "index")

    base_plain, base_header = cosines(base, plain, bq.PLAIN_TOKENS), cosines(base, header, recipe.train.max_seq_length)
    tuned_header, tuned_plain = cosines(tuned, header, recipe.train.max_seq_length), cosines(tuned, plain, bq.PLAIN_TOKENS)
    lexical = bm25_scores(header, queries)
    scores = {"plain base": base_plain, "default": fuse(tuned_header, lexical, alpha),
              **{f"alpha {a}": fuse(tuned_header, lexical, a) for a in ALPHAS},
              "two views": fuse((tuned_header + tuned_plain) / 2, lexical, alpha),
              "tuned + base": fuse((tuned_header + base_plain) / 2, lexical, alpha),
              "three": fuse((tuned_header + tuned_plain + base_plain) / 3, lexical, alpha),
              "base, header": fuse(base_header, lexical, alpha),
              "rrf": rrf(tuned_header, base_plain, lexical)}
    per = score_questions(questions, rows, scores, "bench")["per_question"]
    return {name: [p["ndcg@10"][name] for p in per] for name in scores}


def header_forms(run) -> dict[str, list[float]]:
    """Per-question nDCG@10 of base MiniLM dense over ``run``'s corpus under each header form, and of plain base."""
    from pipeline.common import context_header
    from pipeline.dataset import load_corpus
    from pipeline.evaluation.questions import load_questions, score_questions
    from pipeline.retrieval.search import dense_scores
    from pipeline.rundir import RunDir

    rundir = RunDir(run)
    recipe, rows = rundir.read_recipe(), list(load_corpus(rundir))
    questions = load_questions(recipe.evaluate.questions)
    base = bq._base(run)

    def under(header) -> list[str]:
        return [f"{header(r)}\n{r['text']}" if header(r) else r["text"] for r in rows]

    forms = {"path and symbol (the default)": under(lambda r: context_header(r["path"], r.get("symbol") or "")),
             "path": under(lambda r: r["path"]), "symbol": under(lambda r: r.get("symbol") or ""),
             "none": [r["text"] for r in rows]}
    base.max_seq_length = recipe.train.max_seq_length
    scores = {name: dense_scores(base, texts, [q.query for q in questions], 64, bq.RUNS / "index") for name, texts in forms.items()}
    base.max_seq_length = bq.PLAIN_TOKENS
    scores["plain base"] = dense_scores(base, forms["none"], [q.query for q in questions], 64, bq.RUNS / "index")
    per = score_questions(questions, rows, scores, "bench")["per_question"]
    return {name: [p["ndcg@10"][name] for p in per] for name in scores}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sources", nargs="*", default=[s for s in bq.sources.GIT])
    ap.add_argument("--header-forms", action="store_true", help="the header's form, base model (see the module's doc)")
    ap.add_argument("--label", default="", help="appended to the results section's title (e.g. the half of the sources)")
    args = ap.parse_args()
    measure, reference = (header_forms, "path and symbol (the default)") if args.header_forms else (systems, "default")
    figs = {s: measure(bq.ensure_run(s, "default")) for s in args.sources}
    names = [n for n in next(iter(figs.values())) if n != "plain base"]
    rows = ["Post hoc on each source's default run (no retraining). Δ: nDCG@10 of the system minus plain base MiniLM "
            f"dense (no header, {bq.PLAIN_TOKENS} tokens), and minus {reference}; 95 % paired bootstrap. "
            "Average: over sets, questions resampled within each.", "",
            "| system | " + " | ".join(f"{s} (n {len(f[reference])})" for s, f in figs.items())
            + f" | average − plain base | average − {reference} |", "|---|" + "---|" * (len(figs) + 2)]
    result = {"sources": args.sources, "systems": {}}
    for name in names:
        vs_plain = bq.delta([(f["plain base"], f[name]) for f in figs.values()])
        vs_default = bq.delta([(f[reference], f[name]) for f in figs.values()])
        cells = [f"{np.mean(f[name]):.3f} ({np.mean(f[name]) - np.mean(f['plain base']):+.3f})" for f in figs.values()]
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {vs_plain['delta']:+.3f} {bq._ci(vs_plain['ci'])} | "
                    f"{vs_default['delta']:+.3f} {bq._ci(vs_default['ci'])} |")
        result["systems"][name] = {"vs_plain": vs_plain, "vs_default": vs_default,
                                   "ndcg@10": {s: round(float(np.mean(f[name])), 4) for s, f in figs.items()}}
    title = "quality: the header's form, base model" if args.header_forms else "quality: search-side levers, post hoc"
    save(f"{title}, {args.label}" if args.label else title, result, rows)


if __name__ == "__main__":
    main()
