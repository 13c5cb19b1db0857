"""Gate: the tuned model generalises: tuning added little to the train-minus-holdout gap, and it is not worse than
its base on held-out files beyond a margin."""

import pytest

pytestmark = [pytest.mark.governance, pytest.mark.overfitting]


def test_gap_added_by_tuning(metrics, policy, check):
    """The gap tuning added, not the absolute one: the base model's own train/holdout gap measures how
    much harder the held-out files are, not memorisation."""
    added, limit = round(metrics["overfit_gap"] - metrics["base_gap"], 4), policy["overfitting"]["max_added_gap"]
    lo, hi = metrics.get("added_gap_ci", [None, None])
    check(added, f"<= {limit}", added <= limit,
          f"tuning widened the train/holdout gap by {added} (95 % interval [{lo}, {hi}]; by train draw "
          f"{metrics.get('added_gap_by_draw')}) beyond the base model's own "
          f"gap of {round(metrics['base_gap'], 4)}: it memorised its pairs; train fewer epochs (`train.epochs`), lower "
          "`train.learning_rate`, or mine more pairs")


def test_tuned_not_worse_than_base_on_holdout(metrics, policy, check):
    drop = round(metrics["holdout"]["base"]["ndcg@10"] - metrics["holdout"]["tuned"]["ndcg@10"], 4)
    limit = policy["overfitting"]["max_holdout_drop"]
    lo, hi = metrics.get("holdout_delta_ci", [None, None])
    check(drop, f"<= {limit}", drop <= limit,
          f"on held-out files the tuned model's nDCG@10 is {drop} below its base (tuned - base 95 % interval [{lo}, {hi}], "
          f"{metrics.get('holdout_size', {}).get('queries')} queries): check report.md's per-type table, train longer, "
          "or mine better pairs")
