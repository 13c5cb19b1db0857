"""Gate: enough pairs and chunks in train and holdout to train on and to measure."""

import pytest

pytestmark = [pytest.mark.governance, pytest.mark.dataset_size]
HOW = "mine more: add docstrings and docs, widen `collect.include`, or raise `split.holdout_fraction` for the holdout"


def test_train_pairs(pairs, policy, check):
    n, limit = len(pairs["train"]), policy["dataset_size"]["min_train_pairs"]
    check(n, f">= {limit}", n >= limit, f"too few training pairs; {HOW}")


def test_holdout_pairs(pairs, policy, check):
    n, limit = len(pairs["holdout"]), policy["dataset_size"]["min_holdout_pairs"]
    check(n, f">= {limit}", n >= limit, f"too few holdout pairs to measure anything; {HOW}")


def test_chunks(corpus, policy, check):
    n, limit = len(corpus), policy["dataset_size"]["min_chunks"]
    check(n, f">= {limit}", n >= limit, "too few chunks in the corpus: the repository is too small, or cleaning dropped most of it (see stats/clean.json)")


def test_holdout_chunks(corpus, policy, check):
    n, limit = sum(s == "holdout" for s in corpus["split"]), policy["dataset_size"]["min_holdout_chunks"]
    check(n, f">= {limit}", n >= limit, f"too few holdout chunks to act as distractors; {HOW}")
