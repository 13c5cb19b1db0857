"""Gate: code and docs both present, in chunks and in training pairs, within the policy's bounds."""

import pytest

pytestmark = [pytest.mark.governance, pytest.mark.balance]
FIX = ("set `pairs.balance_code_share` in the recipe (`pairs.balance: downsample` drops pairs of the majority kind, "
       "`upsample` repeats the minority kind), or add the missing kind")


def _code_share(kinds) -> float:
    code, docs = sum(k == "code" for k in kinds), sum(k == "docs" for k in kinds)
    return round(code / (code + docs), 4) if code + docs else 0.0


def test_code_share_of_chunks(corpus, policy, check):
    share, low, high = _code_share(corpus["kind"]), policy["balance"]["min_code_share_chunks"], policy["balance"]["max_code_share_chunks"]
    check(share, f"[{low}, {high}]", low <= share <= high, f"code share of chunks out of bounds; {FIX}")


def test_code_share_of_pairs(pairs, manifest, policy, check):
    # what training sees: with `pairs.balance: upsample` every pair is kept and the minority kind is
    # repeated (pairs.upsample_order, as train does it), so the share is the repeated order's
    from pipeline.mining.pairs import upsample_order

    kinds, recipe = pairs["train"]["kind"], manifest.get("recipe", {}).get("pairs", {})
    if recipe.get("balance") == "upsample" and recipe.get("balance_code_share") is not None:
        kinds = [kinds[i] for i in upsample_order(kinds, recipe["balance_code_share"], manifest.get("seed", 0))]
    share = _code_share(kinds)
    low, high = policy["balance"]["min_code_share_pairs"], policy["balance"]["max_code_share_pairs"]
    check(share, f"[{low}, {high}]", low <= share <= high, f"code share of training pairs out of bounds; {FIX}")
