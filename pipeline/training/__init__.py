"""training: the sentence-transformers trainer on the run's pairs (``train``), with the text each
side is embedded as and the dev split's evaluator (``trainset``)."""
