"""evaluation: the tuned model against its base and BM25 (``evaluate``): the holdout, the question
sets (``questions``, drafted by ``drafts``), the history yardstick, STS (``sts``) and MTEB (``mteb_task``),
with the retrieval metrics and bootstrap intervals in ``metrics``; ``report`` writes report.md."""

from ..errors import RepotuneError


class EvalError(RepotuneError, RuntimeError):
    """Evaluation cannot measure this run; the message says how to fix it."""
