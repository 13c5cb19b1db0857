"""Gate: on the questions people type about the repository (the run's question set, scored over its
whole chunk corpus), the tuned model is not worse than its base beyond a margin."""

import pytest

pytestmark = [pytest.mark.governance, pytest.mark.questions]

HOW = ("write a question set (JSONL, one {\"query\": ..., \"relevant\": [{\"path\": ..., \"symbol\": ...}]} a line; "
       "README, 'Question sets') and run with `--set evaluate.questions=PATH`")


def test_question_set_size(metrics, policy, check):
    n, limit = metrics.get("questions", {}).get("n", 0), policy["questions"]["min_questions"]
    check(n, f">= {limit}", n >= limit, f"the run was measured on {n} questions: {HOW}")


def test_tuned_not_worse_than_base_on_questions(metrics, policy, check):
    limit = policy["questions"]["max_drop"]
    q = metrics.get("questions")
    if q is None:  # no set: this check can only pass where the policy does not ask for one
        required = policy["questions"]["min_questions"] > 0
        check("no question set", f"<= {limit}", not required, f"no question set to judge the tuned model by: {HOW}")
        return
    drop = round(q["base"]["ndcg@10"] - q["tuned"]["ndcg@10"], 4)
    lo, hi = q["delta_ci"]
    check(drop, f"<= {limit}", drop <= limit,
          f"on {q['n']} questions the tuned model's nDCG@10 is {drop} below its base (tuned - base 95 % interval "
          f"[{lo}, {hi}]): read report.md's 'Question set' section for the questions that got worse; mine better pairs or train less")
