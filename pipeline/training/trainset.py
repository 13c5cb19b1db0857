"""trainset: what the trainer sees, beyond the mined pairs: positives under their context header,
hard negatives mined by sentence-transformers, and the dev split that model selection scores."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from ..common import embed_text, embedding_precision, file_of, row_text
from ..console import library_bars_hidden
from ..errors import RepotuneError
from ..retrieval.search import store_corpus_embeddings

log = logging.getLogger("repotune")


class TrainError(RepotuneError, RuntimeError):
    """Training cannot start or continue; the message says what to change."""


def with_context(pairs, corpus):
    """Each positive as ``common.embed_text`` makes it: under its path and its chunk's symbol."""
    symbol = dict(zip(corpus["id"], corpus["symbol"]))
    return pairs.map(lambda row: {"positive": embed_text(row["positive"], row["path"], symbol.get(row["positive_chunk_id"], ""))},
                     keep_in_memory=True)  # nothing written into the run's dataset folder


DEV = "dev"  # the evaluator's name: its metrics are eval_dev_cosine_ndcg@10, ...
DEV_NDCG = f"{DEV}_cosine_ndcg@10"  # what model selection and train.merge_alpha: auto maximise


def dev_evaluator(dev_ds):
    """InformationRetrievalEvaluator over the dev pairs: anchors as queries, positives as the corpus."""
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    queries, corpus, relevant = {}, {}, {}
    for anchor, positive in zip(dev_ds["anchor"], dev_ds["positive"]):
        qid = queries.setdefault(anchor, f"q{len(queries)}")
        corpus.setdefault(positive, f"d{len(corpus)}")
        relevant.setdefault(qid, set()).add(corpus[positive])
    if not queries:
        raise TrainError("train.dev_fraction left no dev pairs to select a model on: raise it, or set it to 0")
    return InformationRetrievalEvaluator({q: a for a, q in queries.items()}, {d: t for t, d in corpus.items()}, relevant,
                                         name=DEV, ndcg_at_k=[10], mrr_at_k=[10], accuracy_at_k=[1], precision_recall_at_k=[10],
                                         map_at_k=[10], write_csv=False, show_progress_bar=False)


def keep_base_embeddings(model, texts: list[str], cache: Path, index_dir: Path) -> bool:
    """Hand the corpus embeddings ``mine_hard_negatives`` computed (its ``cache_folder``: the corpus deduplicated in
    order, the positives after it) to ``search.corpus_embeddings`` in the run's index, so evaluation does not embed
    the corpus with the base model a second time. Two rows are embedded again and compared first: a library version
    that orders its cache otherwise is never trusted (the index is then left alone). Returns whether it kept them."""
    found = list(cache.glob("corpus_embeddings_*.npy"))
    if len(found) != 1 or not texts:
        return False
    cached = np.load(found[0])
    row = {text: i for i, text in enumerate(dict.fromkeys(texts))}
    if cached.ndim != 2 or cached.shape[0] < len(row):
        return False
    emb = cached[[row[text] for text in texts]]
    probe = sorted({0, len(texts) // 2, len(texts) - 1})
    again = model.encode_document([texts[i] for i in probe], normalize_embeddings=True, convert_to_numpy=True)
    if (again * emb[probe]).sum(axis=1).min() < 0.999:  # the same text: cosine 1 (bf16's rounding aside); another: < 0.9
        log.debug("mine_hard_negatives' cached corpus embeddings are not in corpus order: not kept for evaluation")
        return False
    store_corpus_embeddings(model, texts, emb, index_dir)
    return True


def with_hard_negatives(train_ds, model, corpus, context: bool, seed: int, index_dir: Path | None = None):
    """A ``negative`` column: for each pair, the chunk the base model ranks highest that is not the
    positive, scores at most 95 % of it (``relative_margin``: near-ties are likely false negatives) and
    comes from another file than the positive; sentence-transformers' own miner does the mining. A
    pair left without one gets a random chunk of another file (seeded), so no pair is lost.
    The base model's embeddings of the corpus, which mining computes, are kept in ``index_dir`` (the run's index/)
    for evaluation, which embeds the same texts with the same model (``keep_base_embeddings``).
    Returns (dataset, how many negatives were mined rather than drawn)."""
    import random

    from sentence_transformers.util import mine_hard_negatives

    texts = [row_text(r, context) for r in corpus]
    file_of_text: dict[str, str] = {}
    for text, path in zip(texts, corpus["path"]):
        file_of_text.setdefault(text, file_of(path))
    with tempfile.TemporaryDirectory() as cache, library_bars_hidden(), embedding_precision(model):
        mined = mine_hard_negatives(train_ds.select_columns(["anchor", "positive"]), model, corpus=texts, num_negatives=5,
                                    relative_margin=0.05, sampling_strategy="top", output_format="triplet", batch_size=64,
                                    verbose=False, cache_folder=cache)
        if index_dir is not None:
            keep_base_embeddings(model, texts, Path(cache), index_dir)
    own_file = {(a, p): file_of(path) for a, p, path in zip(train_ds["anchor"], train_ds["positive"], train_ds["path"])}
    best: dict[tuple[str, str], str] = {}
    for a, p, n in zip(mined["anchor"], mined["positive"], mined["negative"]):  # in rank order per pair
        if (a, p) not in best and file_of_text.get(n) != own_file.get((a, p)):
            best[(a, p)] = n
    rng = random.Random(seed)
    negatives = []
    for a, p in zip(train_ds["anchor"], train_ds["positive"]):
        negative = best.get((a, p))
        for _ in range(1000):
            if negative is not None:
                break
            candidate = rng.choice(texts)
            negative = candidate if file_of_text[candidate] != own_file[(a, p)] else None
        if negative is None:
            raise TrainError("pairs.hard_negatives needs chunks from more than one file: set it to 0 for this repository")
        negatives.append(negative)
    return train_ds.add_column("negative", negatives), sum((a, p) in best for a, p in zip(train_ds["anchor"], train_ds["positive"]))
