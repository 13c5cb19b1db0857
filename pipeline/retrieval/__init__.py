"""retrieval: searching a corpus with a tuned model (``search``: dense, BM25, the hybrid) and the
browser page comparing base and tuned (``serve``)."""
