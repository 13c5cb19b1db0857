"""Gate: code and docs both reach training. What training sees (its code share, with `pairs.balance: upsample`'s
repeats) lies within the policy's bounds, and does not tilt further than the policy allows from what the repository
holds (the code share of its chunks): a miner that failed on one kind shows here. The repository's own mix is no
check: a code-heavy library holds ~99 % code chunks and that is what its users search."""

import pytest

pytestmark = [pytest.mark.governance, pytest.mark.balance]
FIX = ("set `pairs.balance_code_share` in the recipe (with `pairs.balance: upsample`, the default, training repeats "
       "the minority kind until code is that share of what it sees; nothing is dropped)")


def _code_share(kinds) -> float:
    code, docs = sum(k == "code" for k in kinds), sum(k == "docs" for k in kinds)
    return round(code / (code + docs), 4) if code + docs else 0.0


def _seen_share(pairs, manifest) -> float:
    """The code share of what training sees: with `pairs.balance: upsample` every pair is kept and the minority kind
    repeated (pairs.upsample_order, as train does it), so the share is the repeated order's."""
    from pipeline.mining.pairs import upsample_order

    kinds, recipe = pairs["train"]["kind"], manifest.get("recipe", {}).get("pairs", {})
    if recipe.get("balance") == "upsample" and recipe.get("balance_code_share") is not None:
        kinds = [kinds[i] for i in upsample_order(kinds, recipe["balance_code_share"], manifest.get("seed", 0))]
    return _code_share(kinds)


def test_code_share_of_pairs(pairs, manifest, policy, check):
    share = _seen_share(pairs, manifest)
    low, high = policy["balance"]["min_code_share_pairs"], policy["balance"]["max_code_share_pairs"]
    kinds = pairs["train"]["kind"]
    missing = [k for k in ("code", "docs") if k not in kinds]
    why = f"no {' or '.join(missing)} pair was mined: add documented code and docs (`collect.include`), or " if missing else ""
    check(share, f"[{low}, {high}]", low <= share <= high, f"code share of what training sees out of bounds; {why}{FIX}")


def test_training_mix_against_the_repository(corpus, pairs, manifest, policy, check):
    held, seen = _code_share(corpus["kind"]), _seen_share(pairs, manifest)
    tilt, limit = round(seen - held, 4), policy["balance"]["max_mix_tilt"]
    check(tilt, f"[-{limit}, {limit}]", abs(tilt) <= limit,
          f"training sees {seen:.0%} code where the repository holds {held:.0%} code chunks: one kind's miners found "
          f"little (stats/pairs.json), or the recipe's share is far from this repository's; {FIX}, nearer {held:.2f}")
