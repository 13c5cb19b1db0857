"""Gate: tuning kept general meaning: STS-B Spearman above a floor and not far below the base."""

import pytest

pytestmark = [pytest.mark.governance, pytest.mark.sts]


def test_tuned_sts_floor(metrics, policy, check):
    value, limit = round(metrics["sts"]["tuned_spearman"], 4), policy["sts"]["min_tuned_spearman"]
    check(value, f">= {limit}", value >= limit, f"tuned STS Spearman on {metrics['sts']['source']} below the floor: lower `train.learning_rate` or epochs")


def test_sts_drop_against_base(metrics, policy, check):
    drop, limit = round(metrics["sts"]["base_spearman"] - metrics["sts"]["tuned_spearman"], 4), policy["sts"]["max_drop"]
    check(drop, f"<= {limit}", drop <= limit, "tuning lost general STS ability (catastrophic forgetting): train less, or lower the learning rate")
