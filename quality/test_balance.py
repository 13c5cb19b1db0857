"""Gate: code and docs both present, in chunks and in training pairs, within the policy's bounds."""

import pytest

pytestmark = [pytest.mark.governance, pytest.mark.balance]
FIX = "set `pairs.balance_code_share` in the recipe to down-sample the majority kind, or add the missing kind"


def _code_share(kinds) -> float:
    code, docs = sum(k == "code" for k in kinds), sum(k == "docs" for k in kinds)
    return round(code / (code + docs), 4) if code + docs else 0.0


def test_code_share_of_chunks(corpus, policy, check):
    share, low, high = _code_share(corpus["kind"]), policy["balance"]["min_code_share_chunks"], policy["balance"]["max_code_share_chunks"]
    check(share, f"[{low}, {high}]", low <= share <= high, f"code share of chunks out of bounds; {FIX}")


def test_code_share_of_pairs(pairs, policy, check):
    share, low, high = _code_share(pairs["train"]["kind"]), policy["balance"]["min_code_share_pairs"], policy["balance"]["max_code_share_pairs"]
    check(share, f"[{low}, {high}]", low <= share <= high, f"code share of training pairs out of bounds; {FIX}")
