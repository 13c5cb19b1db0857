"""publishing: the governance gate (``gate``: the quality suites on a run), then model and dataset to
the Hugging Face Hub only when it passed (``publish``, by ``hub``'s HfApi calls)."""
