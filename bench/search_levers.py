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

    python -m bench.search_levers --sources huh llm gin      # after bench-quality's default runs of them
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

    from pipeline.dataset import load_corpus
    from pipeline.evaluation.questions import load_questions, score_questions
    from pipeline.retrieval.search import bm25_scores, dense_scores, fuse, row_text
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sources", nargs="*", default=[s for s in bq.sources.GIT])
    args = ap.parse_args()
    figs = {s: systems(bq.ensure_run(s, "default")) for s in args.sources}
    names = [n for n in next(iter(figs.values())) if n != "plain base"]
    rows = ["Post hoc on each source's default run (no retraining). Δ: nDCG@10 of the system minus plain base MiniLM "
            f"dense (no header, {bq.PLAIN_TOKENS} tokens), and minus the default search; 95 % paired bootstrap. "
            "Average: over sets, questions resampled within each.", "",
            "| system | " + " | ".join(f"{s} (n {len(f['default'])})" for s, f in figs.items())
            + " | average − plain base | average − default |", "|---|" + "---|" * (len(figs) + 2)]
    result = {"sources": args.sources, "systems": {}}
    for name in names:
        vs_plain = bq.delta([(f["plain base"], f[name]) for f in figs.values()])
        vs_default = bq.delta([(f["default"], f[name]) for f in figs.values()])
        cells = [f"{np.mean(f[name]):.3f} ({np.mean(f[name]) - np.mean(f['plain base']):+.3f})" for f in figs.values()]
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {vs_plain['delta']:+.3f} {bq._ci(vs_plain['ci'])} | "
                    f"{vs_default['delta']:+.3f} {bq._ci(vs_default['ci'])} |")
        result["systems"][name] = {"vs_plain": vs_plain, "vs_default": vs_default,
                                   "ndcg@10": {s: round(float(np.mean(f[name])), 4) for s, f in figs.items()}}
    save("quality: search-side levers, post hoc", result, rows)


if __name__ == "__main__":
    main()
