"""mining: chunks -> training pairs from the repository's own structure (``pairs``: the miners, the
code-to-docs balance), then whole files held out for evaluation (``split``)."""
