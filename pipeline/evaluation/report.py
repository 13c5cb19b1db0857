"""report: metrics.json made readable: report.md, plots, and the model card's results."""

from __future__ import annotations

import logging
from pathlib import Path

from ..dataset import project_url
from ..rundir import RunDir

log = logging.getLogger("repotune")
COLUMNS = ("ndcg@10", "mrr@10", "recall@1", "recall@5", "recall@10")


def _table(rows: dict[str, dict], first: str = "model") -> list[str]:
    out = [f"| {first} | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name, m in rows.items():
        out.append(f"| {name} | " + " | ".join(f"{m[c]:.4f}" for c in COLUMNS) + " |")
    return out


def _delta(a: float, b: float) -> str:
    return f"{b - a:+.4f}"


def write_report(run: RunDir, metrics: dict, manifest: dict) -> None:
    h = metrics["holdout"]
    lines = [f"# repotune report: {manifest['source']['name']}", "",
             f"Base model `{manifest.get('train', {}).get('base_model', '?')}`, {manifest.get('train', {}).get('steps', '?')} training steps "
             f"on {manifest['counts']['train_pairs']} pairs; holdout of {metrics['holdout_size']['queries']} queries over "
             f"{metrics['holdout_size']['corpus']} documents.", "",
             "## Holdout retrieval", "", *_table(h), "",
             f"Tuned vs base: nDCG@10 {_delta(h['base']['ndcg@10'], h['tuned']['ndcg@10'])} "
             f"(95 % paired bootstrap interval {metrics.get('holdout_delta_ci')}), "
             f"vs BM25 {_delta(h['bm25']['ndcg@10'], h['tuned']['ndcg@10'])}. Chunks embedded "
             f"{'under a path and symbol header' if metrics.get('context') else 'as they are'}, "
             f"in {metrics.get('embed_precision', 'fp32')}.", "",
             "![retrieval](plots/retrieval.png)", ""]
    for key, title in (("holdout_by_type", "By pair type"), ("holdout_by_kind", "By kind (code / docs)")):
        lines += [f"### {title}", "", "| group | queries | base nDCG@10 | tuned nDCG@10 | BM25 nDCG@10 |", "|---|---|---|---|---|"]
        for g, m in metrics[key].items():
            lines.append(f"| {g} | {m['n_queries']} | {m['base']['ndcg@10']:.4f} | {m['tuned']['ndcg@10']:.4f} | {m['bm25']['ndcg@10']:.4f} |")
        lines.append("")
    t = metrics["train_sample"]
    lines += ["## Overfitting", "", "| model | train-sample nDCG@10 | holdout nDCG@10 | gap |", "|---|---|---|---|",
              f"| base | {t['base']['ndcg@10']:.4f} | {h['base']['ndcg@10']:.4f} | {metrics['base_gap']:+.4f} |",
              f"| tuned | {t['tuned']['ndcg@10']:.4f} | {h['tuned']['ndcg@10']:.4f} | {metrics['overfit_gap']:+.4f} |", "",
              "The gap the tuning added is the tuned gap minus the base gap (what the gate judges): "
              f"{metrics['overfit_gap'] - metrics['base_gap']:+.4f}, 95 % bootstrap interval {metrics.get('added_gap_ci')}. "
              f"The train side is the mean of {len(metrics.get('added_gap_by_draw', [])) or 1} disjoint train samples of the "
              f"holdout's size and shape (the gap each gives: {metrics.get('added_gap_by_draw')}). "
              "The absolute gap mostly measures how much harder the held-out files are.", ""]
    if "questions" in metrics:
        lines += question_section(metrics["questions"])
    if "history" in metrics:
        lines += history_section(metrics["history"])
    s, d = metrics["sts"], metrics["domain_sts"]
    lines += ["## STS (Spearman, cosine)", "", "| data | pairs | base | tuned | delta |", "|---|---|---|---|---|",
              f"| {s['source']} | {s['n']} | {s['base_spearman']:.4f} | {s['tuned_spearman']:.4f} | {_delta(s['base_spearman'], s['tuned_spearman'])} |"]
    if "base_spearman" in d:
        lines.append(f"| domain (holdout structure) | {d['n']} | {d['base_spearman']:.4f} | {d['tuned_spearman']:.4f} | {_delta(d['base_spearman'], d['tuned_spearman'])} |")
    ingredients = manifest.get("train", {}).get("ingredients") or {}
    each = ", ".join(f"{name} {i.get('final_train_loss')}" for name, i in ingredients.items())
    lines += ["", f"Final training loss: {metrics.get('final_train_loss')}" + (f" (the mean of the soup's ingredients: {each})" if each else ""),
              "", "![loss](plots/loss.png)", ""]
    if "mteb" in metrics:
        lines += ["## MTEB (holdout as a retrieval task)", "", "| model | main score (nDCG@10) |", "|---|---|"]
        lines += [f"| {n} | {m.get('main_score', float('nan')):.4f} |" for n, m in metrics["mteb"].items() if n in ("base", "tuned")]
        if "public" in metrics["mteb"]:
            lines += ["", f"Public tasks: {metrics['mteb']['public']}"]
        lines.append("")
    lines += ["## Examples: top 3 before and after tuning", ""]
    def fmt(hit: dict) -> str:
        return f"{'**✓**' if hit['relevant'] else ''} `{hit['path']}:{hit['start_line']}-{hit['end_line']}` ({hit['score']:.3f})"

    for ex in metrics["examples"]:
        lines += [f"**Query** ({ex['pair_type']}): {ex['query'][:200]!r}", "", "| rank | base | tuned |", "|---|---|---|"]
        for i, (b, t_) in enumerate(zip(ex["base"], ex["tuned"]), start=1):
            lines.append(f"| {i} | {fmt(b)} | {fmt(t_)} |")
        lines.append("")
    run.report.write_text("\n".join(lines))
    plot_retrieval(metrics, run.plots / "retrieval.png")
    enrich_model_card(run, metrics)


def question_section(q: dict, shown: int = 5) -> list[str]:
    """The question set: the table, the interval, and the questions that moved most, with top hits."""
    expanded = (f" BM25 also reads the commit subjects of {q['expanded_chunks']} of them (`history.expand`)."
                if q.get("expanded_chunks") else "")
    lines = ["## Question set", "", f"{q['n']} questions from `{q['source']}`, searched over all {q['corpus']} chunks of the run.{expanded}", "",
             *_table({name: q[name] for name in ("base", "tuned", "bm25", "hybrid") if name in q}), "",
             f"Tuned − base nDCG@10: {q['delta']:+.4f}, 95 % paired bootstrap interval {q['delta_ci']}"
             f"{' (inside the noise)' if q['delta_ci'][0] <= 0 <= q['delta_ci'][1] else ''}.", ""]
    moved = sorted(q["per_question"], key=lambda p: p["ndcg@10"]["tuned"] - p["ndcg@10"]["base"])

    def hit(h: dict) -> str:
        return f"{'**✓** ' if h['relevant'] else ''}`{h['path']}:{h['start_line']}` {h['symbol']}".rstrip()

    for title, items in (("Better after tuning", moved[::-1][:shown]), ("Worse after tuning", moved[:shown])):
        items = [p for p in items if (p["ndcg@10"]["tuned"] - p["ndcg@10"]["base"]) * (1 if title.startswith("Better") else -1) > 0]
        lines += [f"### {title}", ""]
        if not items:
            lines += ["none", ""]
            continue
        lines += ["| question | rank base → tuned | base top 3 | tuned top 3 |", "|---|---|---|---|"]
        for p in items:
            lines.append(f"| {p['query'][:90]} | {p['rank']['base'] or '>100'} → {p['rank']['tuned'] or '>100'} | "
                         f"{'<br>'.join(hit(h) for h in p['top']['base'])} | {'<br>'.join(hit(h) for h in p['top']['tuned'])} |")
        lines.append("")
    return lines


def history_section(h: dict) -> list[str]:
    """The history yardstick: the table and the interval (commit subjects are not repeated here)."""
    lines = ["## History yardstick", ""]
    if not h.get("n"):
        return lines + [f"Not measured: {h.get('skipped', 'no held-out commits')}.", ""]
    return lines + [f"The {h['n']} newest kept commits (held out of training) as queries: each subject searched over all "
                    f"{h['corpus']} chunks, relevant = the definitions at HEAD it touched. Developers' words about their own "
                    "change, not a user's question.", "",
                    *_table({name: h[name] for name in ("base", "tuned", "bm25", "hybrid") if name in h}), "",
                    f"Tuned − base nDCG@10: {h['delta']:+.4f}, 95 % paired bootstrap interval {h['delta_ci']}"
                    f"{' (inside the noise)' if h['delta_ci'][0] <= 0 <= h['delta_ci'][1] else ''}.", ""]


def plot_retrieval(metrics: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(metrics["holdout"])
    x = np.arange(len(COLUMNS))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        ax.bar(x + (i - (len(names) - 1) / 2) * width, [metrics["holdout"][name][c] for c in COLUMNS], width, label=name)
    ax.set_xticks(x, COLUMNS)
    ax.set_ylim(0, 1)
    ax.set_title("holdout retrieval")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _yardstick_lines(metrics: dict) -> list[str]:
    """The card's table of the yardsticks in a user's words: base, tuned and the hybrid search, with tuned - base's interval."""
    rows = [(name, metrics[key]) for key, name in (("questions", "question set"), ("history", "history (held-out commit subjects)"))
            if (metrics.get(key) or {}).get("n")]
    if not rows:
        return []
    lines = ["", "Questions in a user's words, over every chunk (nDCG@10):", "",
             "| yardstick | queries | base | tuned | hybrid search | tuned - base [95 % interval] |", "|---|---|---|---|---|---|"]
    for name, y in rows:
        lo, hi = y.get("delta_ci", [float("nan")] * 2)
        lines.append(f"| {name} | {y['n']} | {y['base']['ndcg@10']:.4f} | {y['tuned']['ndcg@10']:.4f} | "
                     f"{y.get('hybrid', {}).get('ndcg@10', float('nan')):.4f} | {y['tuned']['ndcg@10'] - y['base']['ndcg@10']:+.4f} [{lo:+.3f}, {hi:+.3f}] |")
    return lines


def enrich_model_card(run: RunDir, metrics: dict, extra_sections: list[str] = ()) -> None:
    """Add holdout and STS results (base vs tuned) to the card sentence-transformers wrote, as
    model-index results and a table, so the numbers travel with the model."""
    from huggingface_hub import EvalResult, ModelCard

    path = run.model / "README.md"
    if not path.is_file():
        return
    card = ModelCard.load(path)
    h, s = metrics["holdout"], metrics["sts"]
    dataset = "repotune holdout"
    results = [EvalResult(task_type="sentence-similarity", dataset_type="repotune-holdout", dataset_name=dataset,
                          metric_type=m.replace("@", "_at_"), metric_value=round(h["tuned"][m], 4), metric_name=f"holdout {m}")
               for m in COLUMNS]
    results.append(EvalResult(task_type="semantic-similarity", dataset_type="sentence-transformers/stsb", dataset_name="STS-B test",
                              dataset_split="test", metric_type="spearman_cosine", metric_value=round(s["tuned_spearman"], 4)))
    # the yardsticks in a user's words beside the holdout: the question set, the history (held-out commit subjects)
    for key, kind, name in (("questions", "repotune-questions", "question set"), ("history", "repotune-history", "history yardstick")):
        y = metrics.get(key) or {}
        if y.get("n"):
            results += [EvalResult(task_type="sentence-similarity", dataset_type=kind, dataset_name=f"{name} ({y['n']} queries)",
                                   metric_type="ndcg_at_10", metric_value=round(y[system]["ndcg@10"], 4),
                                   metric_name=f"{name} nDCG@10 ({label})") for system, label in (("tuned", "tuned"), ("hybrid", "hybrid search"))
                        if system in y]
    card.data.eval_results = results
    card.data.model_name = card.data.model_name or "repotune model"
    marker = "## repotune evaluation"
    text = card.text.split(marker)[0].rstrip()
    section = [marker, "", f"Tuned by [repotune]({project_url()}). Retrieval on the holdout (whole files never seen in "
               "training), base vs tuned vs BM25 vs hybrid:", "",
               *_table(h), "", "| STS | base | tuned |", "|---|---|---|",
               f"| {s['source']} Spearman | {s['base_spearman']:.4f} | {s['tuned_spearman']:.4f} |", "",
               f"Overfitting gap (train-sample minus holdout nDCG@10): {metrics['overfit_gap']:+.4f} (base: {metrics['base_gap']:+.4f}).",
               *_yardstick_lines(metrics),
               *extra_sections]
    card.text = text + "\n\n" + "\n".join(section) + "\n"
    card.save(path)
