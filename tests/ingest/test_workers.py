"""workers: the per-file stages in worker processes give what one process gives, in the files' order."""

from __future__ import annotations

from types import SimpleNamespace

from support import FIXTURE_FILES, write_files

from pipeline.config import load_recipe
from pipeline.ingest.collect import collect
from pipeline.ingest.workers import FileWorker, process_files, worker_count
from pipeline.records import SourceFile
from pipeline.secrets import SecretScanner, redact_pieces
from pipeline.stage import StageStats


def results(repo, tiny_model, workers: int):
    recipe = load_recipe("smoke", [f"train.base_model={tiny_model}", f"build.workers={workers}"])
    return list(process_files(collect(repo, recipe.collect, StageStats("collect")), recipe))


def test_worker_processes_return_each_file_in_order_with_its_drops(tmp_path, tiny_model):
    """Per file, from a pool of two: results in the files' order, drops counted under their reason, every kept file
    chunked. (That any pool size builds the same dataset is tests/test_build.py's.)"""
    files = {**FIXTURE_FILES, "blob.py": "x\0y", "empty.py": "   \n", "min.js": "x" * 5000}
    repo = write_files(tmp_path / "repo", files)
    one = results(repo, tiny_model, 2)
    assert [r.path for r in one] == sorted(r.path for r in one)
    dropped = {r.path: r.stats["clean"] for r in one if not r.loaded}
    assert dropped["blob.py"] == {"dropped_binary": 1} and dropped["empty.py"] == {"dropped_empty": 1}
    assert dropped["min.js"] == {"dropped_max_line_length": 1}
    kept = [r for r in one if r.kept]
    assert kept and all(len(r.chunk_shingles) == len(r.chunks) > 0 for r in kept)
    assert all(set(r.seconds) == {"clean", "secrets", "chunk", "split"} for r in kept)


def test_worker_count():
    assert worker_count(load_recipe("smoke", ["build.workers=3"])) == 3
    assert worker_count(load_recipe("smoke")) >= 1  # 0: one per CPU core this process may use


# A recorded cookie (simonw/llm's test cassettes). Whole, it reads as structured (dots, a timestamp, a
# version), so the file's scan passes it; a chunk cut inside it can leave a tail that reads as a random
# token, and the gate scans chunks: each such piece is redacted across the file before it is chunked again.
COOKIE = ("      - __cf_bm=ys1VX4Q4znOtsubzjx.nHCe9_hPEK_9fLmKeIYZd9LE-1747148049-1.0.1.1-c_hjWtmrr1A3GwMaBXzfhWwaX3EZ2"
          "E5Iz_5j.KkgJ3qqPA8vdd2tTpYVL1KRgkOWgWKSUHvYx9I62zt4yf.e9GO3PWHu60ji3ZEjh81.uNc;")
CASSETTE = "interactions:\n- response:\n    headers:\n      Set-Cookie:\n" + COOKIE + "\n      Server:\n      - cloudflare\n"


def cassette_results(tiny_model, policy: str):
    for max_tokens in range(16, 65, 4):  # cuts at many places inside the cookie
        recipe = load_recipe("smoke", [f"train.base_model={tiny_model}", f"chunk.max_tokens={max_tokens}",
                                       f"secrets.policy={policy}"])
        worker = FileWorker(recipe)
        try:
            result = worker(SourceFile("cassette.yaml", "docs", "yaml", CASSETTE, len(CASSETTE)))
            yield result, [h for c in result.chunks for h in worker.scanner.scan(c.text, c.path)]
        finally:
            worker.close()


def test_no_chunk_shows_a_secret_that_its_file_hid(tiny_model):
    with SecretScanner() as scanner:
        assert not scanner.scan(CASSETTE, "cassette.yaml")  # the file's own scan passes the cookie whole
    redacted = [r for r, shown in cassette_results(tiny_model, "redact") if not shown and r.kept
                and r.stats["secrets"].get("findings_in_chunks")]
    assert redacted, "no cut showed a random-looking piece: the test no longer exercises the chunks' scan"
    assert all(len(r.findings) == r.stats["secrets"]["findings_in_chunks"] and r.chunks for r in redacted)
    assert any("<SECRET:" in c.text for r in redacted for c in r.chunks)
    dropped = 0
    for result, shown in cassette_results(tiny_model, "drop"):  # secrets.policy: drop: the file goes
        assert not shown
        if not result.kept:
            dropped += 1
            assert not result.chunks and result.stats["secrets"] == {
                "files_with_secrets": 1, "findings_in_chunks": len(result.findings), "kept": 0, "dropped_contains_secret": 1,
                **{f"finding_{f.type}": sum(g.type == f.type for g in result.findings) for f in result.findings}}
    assert dropped == len(redacted)


def test_a_piece_the_file_does_not_hold_drops_the_file():
    source = SourceFile("a.txt", "docs", "text", "nothing here\n", 13)
    piece = SimpleNamespace(text="token = 'Zx9Qw3Er7Ty1Ui5Op2As'", start_line=1)
    stats, report = StageStats("secrets"), []
    stats["kept"] += 1
    with SecretScanner() as scanner:
        assert redact_pieces(scanner, source, [piece], load_recipe("smoke").secrets, stats, report) is None
    assert stats["kept"] == 0 and stats["dropped_secret_not_redactable"] == 1 and report


def test_a_piece_still_showing_after_the_last_pass_drops_the_file(tiny_model, monkeypatch):
    from pipeline.ingest import workers

    monkeypatch.setattr(workers, "MAX_CHUNK_PASSES", 1)  # the one pass redacts, and no pass is left to see it clean
    results = [r for r, _ in cassette_results(tiny_model, "redact") if r.stats["secrets"].get("findings_in_chunks")]
    assert results and all(not r.kept and not r.chunks and r.stats["secrets"]["kept"] == 0
                           and r.stats["secrets"]["dropped_secret_not_redactable"] == 1 for r in results)
