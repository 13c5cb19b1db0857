"""search: a repository's chunks for a query, by a dense model, BM25, or both fused.

One function, ``embed_text``, makes the text a chunk is embedded as (training, evaluation, search
and the MTEB task alike). Dense chunk embeddings are stored once per (model weights, corpus,
context) under an index folder and reused, never re-encoded per query. ``fuse`` is the hybrid
rule: a convex combination of per-query min-max normalised scores, weighted towards the dense
model (``evaluate.hybrid_alpha``), so a weak lexical ranker cannot drag a strong dense one down.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np

from ..common import device_type, embed_precision, embedding_precision, identifier_words, row_text, weights_fingerprint
from ..config import EvaluateConfig
from ..console import shows_progress
from ..errors import RepotuneError
from ..records import SETTINGS_FILE

MODES = ("dense", "bm25", "hybrid")
DEFAULT_ALPHA = EvaluateConfig.hybrid_alpha  # dense weight of the hybrid: the recipe's default, the one place it is set


class SearchError(RepotuneError, RuntimeError):
    """Search cannot run on what it was given; the message says what to pass instead."""


# --- chunk expansion: a chunk's own commit subjects, on the BM25 side (history.expand) -------------------

def commit_subjects(train_pairs, cap: int) -> dict[str, list[str]]:
    """Chunk id -> up to ``cap`` distinct subjects of the commits that touched it, in the pairs' order
    (the history stage's: newest first). Only the training split's ``commit_definition`` pairs: a
    holdout pair's subject is a holdout query and a held-out commit (the history yardstick) is in no
    pair, so no query's own text ever expands a chunk. ``cap`` 0: {} (expansion off)."""
    out: dict[str, list[str]] = {}
    if cap:
        for p in train_pairs:
            if p["pair_type"] == "commit_definition":
                subjects = out.setdefault(p["positive_chunk_id"], [])
                if len(subjects) < cap and p["anchor"] not in subjects:
                    subjects.append(p["anchor"])
    return out


def run_subjects(run_root: Path, cap: int) -> dict[str, list[str]]:
    """``commit_subjects`` of a run's training pairs (RUN/dataset/pairs); {} when off or the run has none."""
    pairs = Path(run_root) / "dataset" / "pairs"
    if not cap or not (pairs / "dataset_dict.json").is_file():
        return {}
    from datasets import load_from_disk

    return commit_subjects(load_from_disk(str(pairs))["train"].select_columns(["pair_type", "positive_chunk_id", "anchor"]), cap)


def lexical_texts(rows: list[dict], context: bool, subjects: dict[str, list[str]]) -> list[str]:
    """What BM25 indexes: each row's ``row_text``, then its commit subjects (``commit_subjects``), one a line."""
    return [row_text(r, context) + "".join(f"\n{s}" for s in subjects.get(r.get("id", ""), ())) for r in rows]


# --- lexical: BM25 over code-aware tokens -------------------------------------------------------------

def code_tokens(text: str) -> list[str]:
    """BM25 tokens that know code: snake_case and CamelCase split into words, lowercased; the whole
    identifier is kept too, so an exact name still matches."""
    out = []
    for word in re.findall(r"[A-Za-z0-9_]+", text):
        parts = identifier_words(word)
        out += parts
        if len(parts) > 1:
            out.append(word.lower())
    return out


def bm25_index(texts: list[str]):
    """A bm25s index of ``texts`` over code-aware tokens (built once, queried many times)."""
    import bm25s

    retriever = bm25s.BM25()
    retriever.index([code_tokens(t) or ["<empty>"] for t in texts], show_progress=False)
    return retriever


def bm25_scores(texts: list[str], queries: list[str], retriever=None) -> np.ndarray:
    """BM25 score of every text for every query: an array [queries, texts] (0 where no term matches).
    ``retriever``: a ``bm25_index`` of ``texts`` made earlier."""
    retriever = retriever or bm25_index(texts)
    docs, scores = retriever.retrieve([code_tokens(q) or ["<empty>"] for q in queries], k=len(texts), show_progress=False)
    out = np.zeros((len(queries), len(texts)), dtype=np.float32)
    np.put_along_axis(out, np.asarray(docs, dtype=np.int64), np.asarray(scores, dtype=np.float32), axis=1)
    return out


# --- dense: embeddings stored per (weights, corpus, context) ------------------------------------------

def _corpus_key(texts: list[str]) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()[:16]


def corpus_embeddings(model, texts: list[str], batch_size: int = 32, index_dir: Path | None = None) -> np.ndarray:
    """Normalised embeddings of ``texts``; read from / written to ``index_dir`` when given, keyed by the
    model's weights, its token window, the precision it embeds in (``common.embed_precision``) and the exact texts, so
    a changed model, window, precision or corpus is never served stale vectors."""
    path = _index_path(model, texts, index_dir) if index_dir is not None else None
    if path is not None and path.is_file():
        return np.load(path)
    with embedding_precision(model):
        emb = model.encode_document(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                                    show_progress_bar=len(texts) > 2000 and shows_progress())
    emb = np.asarray(emb, dtype=np.float32)
    if path is not None:
        store_corpus_embeddings(model, texts, emb, index_dir)
    return emb


def _index_path(model, texts: list[str], index_dir: Path) -> Path:
    precision = embed_precision(device_type(model))
    return Path(index_dir) / f"{weights_fingerprint(model)}-{model.max_seq_length}-{precision}-{_corpus_key(texts)}.npy"


def store_corpus_embeddings(model, texts: list[str], emb: np.ndarray, index_dir: Path) -> None:
    """Keep ``model``'s normalised embeddings of ``texts`` where ``corpus_embeddings`` finds them (written atomically):
    how training's hard-negative mining hands the base model's corpus embeddings to evaluation."""
    path = _index_path(model, texts, index_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, np.asarray(emb, dtype=np.float32))
    tmp.replace(path)


def dense_scores(model, texts: list[str], queries: list[str], batch_size: int = 32, index_dir: Path | None = None) -> np.ndarray:
    """Cosine similarity of every text to every query: an array [queries, texts]."""
    return query_embeddings(model, queries, batch_size) @ corpus_embeddings(model, texts, batch_size, index_dir).T


def query_embeddings(model, queries: list[str], batch_size: int = 32) -> np.ndarray:
    with embedding_precision(model):
        emb = model.encode_query(queries, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    return np.asarray(emb, dtype=np.float32)


# --- hybrid ----------------------------------------------------------------------------------------------

def _minmax(scores: np.ndarray) -> np.ndarray:
    low = scores.min(axis=1, keepdims=True)
    span = scores.max(axis=1, keepdims=True) - low
    return np.divide(scores - low, span, out=np.zeros_like(scores), where=span > 0)


def fuse(dense: np.ndarray, lexical: np.ndarray, alpha: float = DEFAULT_ALPHA) -> np.ndarray:
    """``alpha`` x dense + (1 - alpha) x BM25, each min-max normalised per query over the corpus. A
    query with no lexical match keeps its dense order exactly."""
    return alpha * _minmax(dense) + (1 - alpha) * _minmax(lexical)


def top_k(scores: np.ndarray, ids: list[str], k: int) -> list[list[dict]]:
    """Per query, the ``k`` best as InformationRetrievalEvaluator's ranking format."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    out = []
    for row, cand in zip(scores, part):
        order = cand[np.argsort(-row[cand], kind="stable")]
        out.append([{"corpus_id": ids[j], "score": float(row[j])} for j in order])
    return out


# --- the search command -----------------------------------------------------------------------------------

def model_settings(model_dir: Path) -> dict:
    """How a model's chunks are embedded and fused: written by train next to the weights."""
    path = Path(model_dir) / SETTINGS_FILE
    settings = json.loads(path.read_text()) if path.is_file() else {}
    return {"context": bool(settings.get("context", False)), "hybrid_alpha": float(settings.get("hybrid_alpha", DEFAULT_ALPHA)),
            "expand": int(settings.get("expand", 0))}


def _chunks_of_folder(folder: Path, model_dir: Path, model) -> list[dict]:
    """A plain folder's chunks, made on the fly by the build's own ingest path (``workers.ingest``):
    collect, clean (duplicates too), the secret scan (redacted as the build redacts), chunk."""
    from ..config import load_recipe
    from ..ingest.workers import folder_rows

    recipe = load_recipe("default", [f"train.base_model={model_dir}", f"train.max_seq_length={model.max_seq_length}"])
    return folder_rows(folder, recipe)


def search_corpus(corpus: str | Path | None, model_dir: Path, model) -> tuple[list[dict], str, Path]:
    """Rows (text, path, start_line, end_line, ...), where they came from, and the index folder for
    their embeddings: a run's chunk corpus, a pulled dataset, a saved corpus, or (a plain folder)
    chunks made on the fly."""
    from datasets import Dataset, load_from_disk

    cache = Path(os.environ.get("REPOTUNE_CACHE", Path.home() / ".cache" / "repotune")) / "index"
    if corpus is None:
        if (model_dir.parent / "dataset" / "corpus").is_dir():  # runs/NAME/model: its own run's corpus
            corpus = model_dir.parent
        else:
            raise SearchError(f"{model_dir} is not inside a run: give --corpus runs/NAME (a run's chunk corpus), "
                              "a pulled dataset folder, or any folder of code and docs")
    path = Path(corpus)
    for candidate in (path / "dataset" / "corpus", path):  # a run's corpus, or a corpus saved with save_to_disk
        if (candidate / "state.json").is_file():
            index = path / "index" if candidate != path else cache
            return list(load_from_disk(str(candidate))), f"chunk corpus {candidate}", index
    shards = sorted((path / "corpus").glob("data-*.arrow"))  # a dataset made by publish, pulled back
    if shards:
        return [row for shard in shards for row in Dataset.from_file(str(shard))], f"chunk corpus {path / 'corpus'}", cache
    if path.is_dir():
        rows = _chunks_of_folder(path, model_dir, model)
        if not rows:
            raise SearchError(f"no text chunks in {path}: point --corpus at a folder of code and docs")
        return rows, f"{len(rows)} chunks made from {path}", cache
    raise SearchError(f"--corpus {path} does not exist: give runs/NAME, a pulled dataset folder, or a folder of code and docs")


class Index:
    """One model over one corpus: the embedded texts and their stored embeddings, ready for queries."""

    def __init__(self, model, rows: list[dict], context: bool, index_dir: Path | None, alpha: float = DEFAULT_ALPHA,
                 subjects: dict[str, list[str]] | None = None):
        """``model`` None: BM25 only (no embeddings). ``subjects``: the chunk expansion BM25 indexes too
        (``commit_subjects``)."""
        self.model, self.rows, self.alpha = model, rows, alpha
        self.texts = [row_text(r, context) for r in rows]
        self.embeddings = corpus_embeddings(model, self.texts, index_dir=index_dir) if model is not None else None
        self.lexical_texts = lexical_texts(rows, context, subjects or {})
        self.lexical = bm25_index(self.lexical_texts)

    def scores(self, queries: list[str], mode: str) -> np.ndarray:
        if mode not in MODES:
            raise SearchError(f"--mode {mode!r}: choose one of {', '.join(MODES)}")
        if mode == "bm25":
            return bm25_scores(self.lexical_texts, queries, self.lexical)
        dense = query_embeddings(self.model, queries) @ self.embeddings.T
        return fuse(dense, bm25_scores(self.lexical_texts, queries, self.lexical), self.alpha) if mode == "hybrid" else dense

    def hits(self, queries: list[str], mode: str, k: int) -> list[list[dict]]:
        """Per query, the ``k`` best rows: score, path, lines, symbol, kind, text."""
        keep = ("path", "start_line", "end_line", "symbol", "kind", "text")
        ids = [str(i) for i in range(len(self.rows))]
        return [[{"score": round(h["score"], 4), **{key: self.rows[int(h["corpus_id"])].get(key) for key in keep}} for h in ranked]
                for ranked in top_k(self.scores(queries, mode), ids, k)]


def load_model(model_dir: Path):
    from sentence_transformers import SentenceTransformer

    if not (Path(model_dir) / "modules.json").is_file():
        raise SearchError(f"{model_dir} is not a saved SentenceTransformer: give runs/NAME/model, or pull one first with "
                          "`repotune pull ORG/NAME --out DIR`")
    return SentenceTransformer(str(model_dir), local_files_only=True)


def search(model_dir: str | Path, queries: list[str], corpus: str | Path | None = None, k: int = 5, mode: str = "hybrid") -> dict:
    """The ``k`` best chunks for each query by ``mode`` (dense, bm25 or hybrid); embeddings of the
    corpus are computed once and kept in the index folder."""
    if mode not in MODES:
        raise SearchError(f"--mode {mode!r}: choose one of {', '.join(MODES)}")
    if not queries:
        raise SearchError("no query: give one on the command line, or --queries FILE with one per line")
    model_dir = Path(model_dir)
    if (model_dir / "manifest.json").is_file() and (model_dir / "model").is_dir():
        model_dir = model_dir / "model"  # a run directory, as serve, gate and evaluate take it: its model
    model = load_model(model_dir)
    settings = model_settings(model_dir)
    rows, source, index_dir = search_corpus(corpus, model_dir, model)
    subjects = run_subjects(Path(corpus) if corpus is not None else model_dir.parent, settings["expand"])  # a run's own
    index = Index(None if mode == "bm25" else model, rows, settings["context"], index_dir, settings["hybrid_alpha"], subjects)
    return {"source": source, "mode": mode, "results": [{"query": q, "hits": h} for q, h in zip(queries, index.hits(queries, mode, k))]}


def search_text(result: dict, width: int = 100) -> str:
    lines = []
    for item in result["results"]:
        lines.append(f"{len(item['hits'])} best for {item['query']!r} in {result['source']} ({result['mode']}):")
        for i, hit in enumerate(item["hits"], start=1):
            symbol = f"  {hit['symbol']}" if hit.get("symbol") else ""
            lines.append(f"{i:>3}. {hit['score']:.4f}  {hit['path']}:{hit['start_line']}-{hit['end_line']}{symbol}")
            first = next((line.strip() for line in (hit["text"] or "").splitlines() if line.strip()), "")
            lines.append(f"       {first[:width]}")
    return "\n".join(lines)
