"""Gate: the tuned model generalises: small train-minus-holdout gap, and it beats its base on holdout."""

import pytest

pytestmark = [pytest.mark.governance, pytest.mark.overfitting]


def test_overfit_gap(metrics, policy, check):
    gap, limit = round(metrics["overfit_gap"], 4), policy["overfitting"]["max_gap"]
    check(gap, f"<= {limit}", gap <= limit,
          "tuned model scores much better on training pairs than on held-out files: train fewer epochs "
          "(`train.epochs`), lower `train.learning_rate`, or mine more pairs")


def test_gap_added_by_tuning(metrics, policy, check):
    added, limit = round(metrics["overfit_gap"] - metrics["base_gap"], 4), policy["overfitting"]["max_added_gap"]
    check(added, f"<= {limit}", added <= limit, "tuning widened the train/holdout gap beyond the base model's: it memorised; train less")


def test_tuned_beats_base_on_holdout(metrics, policy, check):
    gain = round(metrics["holdout"]["tuned"]["ndcg@10"] - metrics["holdout"]["base"]["ndcg@10"], 4)
    limit = policy["overfitting"]["min_holdout_gain"]
    check(gain, f"> {limit}", gain > limit,
          "the tuned model does not beat its base on held-out files: check report.md's per-type table, train longer, or mine better pairs")
