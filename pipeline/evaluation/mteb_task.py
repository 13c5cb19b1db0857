"""mteb_task: a run's holdout as an ``mteb`` retrieval task, scored with ``mteb.evaluate``, fully offline.

``holdout_task`` builds an ``AbsTaskRetrieval`` whose ``load_data`` hands mteb the in-memory corpus, queries and
relevance judgements (mteb 2.x layout: ``self.dataset[subset][split]`` is a ``RetrievalSplitData``); nothing
is fetched from the Hub. ``run_mteb`` scores one loaded SentenceTransformer on such a task.

Two things mteb does by itself that we pin down here:

* it keeps a results cache (``~/.cache/mteb`` or ``$MTEB_CACHE``) and, with its default overwrite strategy,
  answers a second run from the cached file instead of scoring again;
* a local SentenceTransformer has no model name, so every such model is filed under the same
  ``no_model_name/available`` folder, and a second model is handed the first one's score.

So ``run_mteb`` names each model (``repotune/base``, ``repotune/tuned``), gives it a revision derived from its
weights, points the cache at ``output_dir`` and always re-runs. mteb then writes, and only there::

    output_dir/results/<org>__<name>/<revision>/<TaskName>.json   # the TaskResult (all scores)
    output_dir/results/<org>__<name>/<revision>/model_meta.json
    output_dir/results/<org>__<name>/<revision>/run_settings.jsonl

(Importing ``mteb`` itself still creates an empty ``~/.cache/mteb`` folder: its default cache object is made at
import time. No result is ever written there by this module.)
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..common import embedding_precision, hub_offline, weights_fingerprint

if TYPE_CHECKING:
    from mteb.abstasks.retrieval import AbsTaskRetrieval

log = logging.getLogger("repotune")

SPLIT = "test"
SUBSET = "default"
HEADLINE = ("ndcg_at_10", "mrr_at_10", "recall_at_10", "main_score")
# what run_mteb returns; the result JSON keeps everything else mteb computes (nAUC, @1000, ...)
_KEPT = re.compile(r"(ndcg|map|mrr|recall|precision|hit_rate)_at_(1|3|5|10|20|100)|main_score")


def _content_hash(*parts: Any) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(json.dumps(part, sort_keys=True, ensure_ascii=False).encode())
        digest.update(b"\0")
    return digest.hexdigest()


def _check_holdout(queries: dict[str, str], corpus: dict[str, str], relevant: dict[str, dict[str, int]]) -> None:
    if not queries or not corpus:
        raise ValueError(f"an mteb retrieval task needs queries and a corpus (got {len(queries)} queries, {len(corpus)} documents)")
    unknown_q = sorted(set(relevant) - set(queries))
    unknown_d = sorted({d for docs in relevant.values() for d in docs} - set(corpus))
    if unknown_q or unknown_d:
        raise ValueError(f"relevant names ids that are not there: queries {unknown_q[:5]}, documents {unknown_d[:5]}")
    if not any(score > 0 for docs in relevant.values() for score in docs.values()):
        raise ValueError("no query has a relevant document: nothing to measure")


def holdout_task(queries: dict[str, str], corpus: dict[str, str], relevant: dict[str, dict[str, int]],
                 name: str = "RepotuneHoldoutRetrieval") -> AbsTaskRetrieval:
    """An mteb retrieval task over the given holdout: ``queries`` {qid: text}, ``corpus`` {doc id: text},
    ``relevant`` {qid: {doc id: relevance}}. One subset (``default``), one split (``test``), main score nDCG@10.

    The task's dataset revision is a hash of its content, so mteb's result file records which holdout it scored.
    Queries without a relevant document are dropped by mteb itself.
    """
    from datasets import Dataset
    from mteb.abstasks.retrieval import AbsTaskRetrieval
    from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData
    from mteb.abstasks.task_metadata import TaskMetadata

    queries = {str(k): str(v) for k, v in queries.items()}
    corpus = {str(k): str(v) for k, v in corpus.items()}
    relevant = {str(q): {str(d): int(s) for d, s in docs.items()} for q, docs in relevant.items()}
    _check_holdout(queries, corpus, relevant)
    revision = _content_hash(queries, corpus, relevant)[:16]

    metadata = TaskMetadata(
        name=name,
        description="Held-out queries and code/doc chunks of a repotune run: retrieve each query's source chunk.",
        reference=None,
        dataset={"path": f"repotune/{name}", "revision": revision},  # never loaded: load_data below is local
        type="Retrieval",
        category="t2t",
        modalities=["text"],
        eval_splits=[SPLIT],
        eval_langs=["eng-Latn"],
        main_score="ndcg_at_10",
        date=None,
        domains=["Programming", "Written"],
        task_subtypes=[],
        license="not specified",
        annotations_creators="derived",
        dialect=[],
        sample_creation="found",
        bibtex_citation="",
    )

    def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
        if self.data_loaded:
            return
        split = RetrievalSplitData(
            queries=Dataset.from_list([{"id": q, "text": t} for q, t in queries.items()]),
            corpus=Dataset.from_list([{"id": d, "title": "", "text": t} for d, t in corpus.items()]),
            relevant_docs={q: dict(docs) for q, docs in relevant.items()},
            top_ranked=None,
        )
        self.dataset = {SUBSET: {SPLIT: split}}
        self.data_loaded = True

    # metadata is a class attribute on purpose: AbsTask.unload_data() (run by mteb.evaluate after each model)
    # pops an instance-level `metadata`, which would silently fall back to the class's.
    cls = type(name, (AbsTaskRetrieval,), {"metadata": metadata, "load_data": load_data, "__module__": __name__,
                                           "__doc__": f"repotune holdout retrieval task {name!r} (in-memory data)."})
    return cls()


def _named_wrapper(model, model_name: str, revision: str):
    """mteb's own SentenceTransformer wrapper, its ModelMeta carrying our name and revision."""
    from mteb.models import SentenceTransformerEncoderWrapper

    if "/" not in model_name:  # mteb's ModelMeta wants "organisation/name"
        model_name = f"repotune/{model_name}"
    wrapper = SentenceTransformerEncoderWrapper(model)
    wrapper.mteb_model_meta = wrapper.mteb_model_meta.model_copy(update={"name": model_name, "revision": revision})
    return wrapper


def _split_scores(task_result, split: str) -> dict[str, float]:
    """The kept scores (``_KEPT``) of one split; the mean over subsets where a task has several."""
    rows = task_result.scores.get(split)
    if not rows:
        raise RuntimeError(f"mteb returned no scores for split {split!r} of {task_result.task_name}: {list(task_result.scores)}")
    keys = [k for k, v in rows[0].items() if _KEPT.fullmatch(k) and isinstance(v, (int, float)) and not isinstance(v, bool)]
    out = {}
    for key in keys:
        values = [float(r[key]) for r in rows if isinstance(r.get(key), (int, float))]
        out[key] = sum(values) / len(values)
    return out


def run_mteb(model, model_name: str, task, output_dir: Path, *, revision: str | None = None,
             batch_size: int = 32) -> dict:
    """Score a loaded SentenceTransformer on ``task`` with ``mteb.evaluate``.

    Returns floats for the task's first eval split (``test`` for ``holdout_task``): ``main_score`` and
    ``{ndcg,map,mrr,recall,precision,hit_rate}_at_{1,3,5,10,20,100}`` (so ``ndcg_at_10``, ``mrr_at_10``,
    ``recall_at_10`` among them); averaged over subsets for a multi-subset task. mteb's result JSON lands under ``output_dir/results/`` (see the module docstring); the
    cache lives in ``output_dir`` only and is always overwritten, never read back, so one model never gets
    another's score. ``revision`` defaults to a fingerprint of the weights.
    """
    import mteb

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    wrapper = _named_wrapper(model, model_name, revision or weights_fingerprint(model))
    with embedding_precision(model):
        result = mteb.evaluate(
            wrapper,
            task,
            cache=mteb.ResultCache(cache_path=output_dir),
            overwrite_strategy="always",
            encode_kwargs={"batch_size": batch_size, "show_progress_bar": False},
            co2_tracker=False,
            show_progress_bar=False,
            raise_error=True,
        )
    if not result.task_results:
        raise RuntimeError(f"mteb produced no result for {task.metadata.name}: {result.exceptions}")
    scores = _split_scores(result.task_results[0], task.metadata.eval_splits[0])
    missing = [k for k in HEADLINE if k not in scores]
    if missing:
        raise RuntimeError(f"mteb result for {task.metadata.name} lacks {missing}")
    bad = {k: scores[k] for k in HEADLINE if not math.isfinite(scores[k])}
    if bad:
        log.warning("mteb %s on %s: non-finite scores %s", model_name, task.metadata.name, bad)
    log.info("mteb %s on %s: nDCG@10 %.4f, MRR@10 %.4f, R@10 %.4f -> %s", wrapper.mteb_model_meta.name,
             task.metadata.name, scores["ndcg_at_10"], scores["mrr_at_10"], scores["recall_at_10"],
             result_file(output_dir, model_name, task.metadata.name))
    return scores


def result_file(output_dir: Path, model_name: str, task_name: str) -> Path | None:
    """The newest mteb result JSON for ``model_name`` on ``task_name`` under ``output_dir``, or None."""
    if "/" not in model_name:
        model_name = f"repotune/{model_name}"
    folder = Path(output_dir) / "results" / model_name.replace("/", "__").replace(" ", "_")
    found = sorted(folder.glob(f"*/{task_name}.json"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def public_tasks(names: list[str]) -> list:
    """Public mteb tasks by name (e.g. ``NanoSciFactRetrieval``), their data loaded from the Hub.

    All or nothing: offline (``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE``), or any task failing to resolve or
    load, gives ``[]`` and a log line "skipped: Hub out of reach".
    """
    names = list(names or [])
    if not names:
        return []
    if hub_offline("HF_DATASETS_OFFLINE"):
        log.info("mteb public tasks %s skipped: Hub out of reach (HF_HUB_OFFLINE is set)", names)
        return []
    try:
        import mteb

        tasks = list(mteb.get_tasks(tasks=names))
        for task in tasks:
            task.load_data()
    except Exception as exc:  # no network, unknown name, a dataset gone: the run goes on without them
        log.warning("mteb public tasks %s skipped: Hub out of reach (%s: %s)", names, type(exc).__name__, exc)
        return []
    return tasks
