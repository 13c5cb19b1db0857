"""ingest: a repository's files -> clean, secret-free, token-bounded chunks, and its history.

collect (which files, of which kind) -> clean (path rules, decoding, duplicates) -> secrets (three
scanners unioned, exact spans redacted) -> chunk (by structure: ``ast``, tree-sitter in ``syntax``,
headings; doc comments in ``doc_comments``), run per file in worker processes by ``workers.ingest``,
the one path every caller takes (the build, ``repotune search --corpus FOLDER``). ``history`` reads
the git log once every file is chunked; ``invariants`` states what every chunk list satisfies.
"""
