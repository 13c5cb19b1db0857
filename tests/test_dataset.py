"""dataset: the build's chunk store on disk (written as files are chunked, read back memory-mapped)."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from pipeline.config import CleanConfig
from pipeline.dataset import CHUNK_FEATURES, ChunkStore
from pipeline.ingest.clean import text_shingle_hashes
from pipeline.records import Chunk, chunk_id


def make_chunks(path: str, n: int) -> list[Chunk]:
    texts = [f"def f{i}(x):\n    return x + {i}  # step {i} of {path}" for i in range(n)]
    return [Chunk(chunk_id(path, 2 * i + 1, 2 * i + 2, t), t, path, "code", "python", 2 * i + 1, 2 * i + 2, f"f{i}", "function",
                  12, "abc" if path.endswith("a.py") else None, {"signature": f"def f{i}(x)"}) for i, t in enumerate(texts)]


def test_the_store_reads_back_what_was_written_in_order(tmp_path):
    config = CleanConfig()
    store = ChunkStore(tmp_path / ".build" / "chunks.arrow")
    files = [make_chunks("pkg/a.py", 3), make_chunks("pkg/b.py", 2), [], make_chunks("docs/c.py", 1)]
    for chunks in files:
        store.add(chunks, [np.array(text_shingle_hashes(c.text, config), dtype="<u4").tobytes() for c in chunks])
    store.close()
    every = [c for chunks in files for c in chunks]
    assert store.rows == len(every) == 6 and store.text_bytes == sum(len(c.text.encode()) for c in every)
    assert list(store.chunks()) == every  # meta is not stored, and compares equal regardless
    assert store.texts(set(range(store.rows))) == dict(enumerate(c.text for c in every))
    assert store.texts({4, 0}) == {0: every[0].text, 4: every[4].text} and store.texts(set()) == {}
    for (path, hashes), c in zip(store.shingles(), every, strict=True):
        assert path == c.path and hashes == text_shingle_hashes(c.text, config)
    digest = hashlib.sha256()
    corpus = store.write_corpus(tmp_path / ".build" / "corpus.arrow", {"pkg/b.py"}, digest)
    assert corpus.column_names == list(CHUNK_FEATURES)  # the corpus columns, split last, no shingle hashes
    expected = hashlib.sha256(b"\x00split\x00")
    for row in corpus:
        expected.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode())
    assert digest.hexdigest() == expected.hexdigest()  # each row hashed as written
    assert corpus["split"] == ["train"] * 3 + ["holdout"] * 2 + ["train"]
    assert corpus["commit"] == ["abc"] * 3 + [""] * 3
    store.remove()
    assert not (tmp_path / ".build").exists()


def test_an_empty_store_closes_and_is_removed(tmp_path):
    store = ChunkStore(tmp_path / ".build" / "chunks.arrow")
    store.close()
    assert store.rows == 0 and list(store.chunks()) == []
    assert len(store.write_corpus(tmp_path / ".build" / "corpus.arrow", set(), hashlib.sha256())) == 0
    store.remove()
    assert not (tmp_path / ".build").exists()
