"""console: what repotune shows in a terminal. By default its own lines only: a progress bar per long
stage, a line per stage, and a closing summary. Other libraries' INFO logs, progress bars and known
warnings appear with ``-v``; ``--quiet`` shows errors and the final line.

Libraries are quietened the way their authors provide (their loggers' verbosity and their own
progress-bar switches), never by swallowing errors; only warnings known to be harmless here are
filtered, each by its message.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import warnings

from tqdm.auto import tqdm

log = logging.getLogger("repotune")

# library loggers that speak at INFO (or print bars tied to INFO) on every run
_LIBRARY_LOGGERS = ("sentence_transformers", "transformers", "datasets", "huggingface_hub", "mteb", "bm25s", "httpx", "urllib3", "filelock")
# warnings that are true but not the user's to act on; each by message (shown with -v)
_KNOWN_WARNINGS = (
    r".*'pin_memory' argument is set as true but no accelerator is found.*",  # torch's DataLoader on a CPU-only machine
    r".*get_sentence_embedding_dimension.*",  # sentence-transformers renamed it; mteb still calls the old name
    r".*`warmup_ratio` argument is deprecated.*",  # sentence-transformers' trainer on Transformers v5
)


def configure(verbose: bool = False, quiet: bool = False) -> None:
    """Set repotune's own lines (INFO, or WARNING when quiet, DEBUG when verbose) and the libraries'."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s" if verbose else "%(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    log.propagate = False
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if verbose:
        return
    import bm25s  # noqa: F401 (it sets its logger to DEBUG when imported: import it first, then quieten it)

    for name in _LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    import datasets
    import huggingface_hub

    datasets.utils.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    huggingface_hub.utils.disable_progress_bars()  # transformers reads this switch when it is imported
    # transformers costs seconds to import and `build` never needs it: its verbosity is set by the
    # variable it reads when first imported (or now, where something imported it already)
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    if "transformers" in sys.modules:
        transformers = sys.modules["transformers"]
        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    for message in _KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=message)


_BAR = re.compile(r"^[^\n]{0,60}:\s+\d+%\|")  # a tqdm bar's text: "Batches:  42%|████▏     | 39/93 [...]"


@contextlib.contextmanager
def library_bars_hidden():
    """Hide the bars a library draws with progress forced on, which TQDM_DISABLE cannot turn off (sentence-transformers'
    ``mine_hard_negatives`` encodes with ``show_progress_bar=True``): what it writes to stderr is held, and whatever is
    not a bar is written out after. repotune's own lines are unaffected (its log handler holds the real stream);
    with ``-v`` nothing is hidden."""
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    held = io.StringIO()
    try:
        with contextlib.redirect_stderr(held):
            yield
    finally:
        rest = [line for line in held.getvalue().replace("\r", "\n").splitlines() if line.strip() and not _BAR.match(line)]
        if rest:
            sys.stderr.write("\n".join(rest) + "\n")


def shows_progress() -> bool:
    """Progress bars only at repotune's INFO level and on a terminal (not in CI logs or captured output)."""
    return log.isEnabledFor(logging.INFO) and sys.stderr.isatty()


LINE_SECONDS = 30.0  # piped output (a notebook cell, a CI log): a progress line at most this often, the first after it


class _Lines:
    """A file for tqdm where each refresh is a line of its own: piped output (Colab's cells, a log) shows a redrawn
    bar as nothing at all, or as one endless line."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> None:
        text = text.replace("\r", "").strip()  # tqdm redraws with a carriage return, and clears with spaces
        if text:
            self.stream.write(text + "\n")
            self.stream.flush()

    def flush(self) -> None:
        self.stream.flush()


def progress(iterable=None, **kwargs):
    """A tqdm bar for one long stage on a terminal (``shows_progress``); where the output is piped (a notebook, a
    log), a line every ``LINE_SECONDS`` instead (done / total, elapsed < left, rate, postfix); nothing when quiet.
    Work shorter than ``LINE_SECONDS`` prints no line."""
    if shows_progress():
        return tqdm(iterable, disable=False, leave=False, dynamic_ncols=True, **kwargs)
    return tqdm(iterable, disable=not log.isEnabledFor(logging.INFO), leave=False, file=_Lines(sys.stderr),
                mininterval=LINE_SECONDS, maxinterval=max(LINE_SECONDS, 1.0), delay=LINE_SECONDS,  # tqdm's monitor redraws every maxinterval
                bar_format="{desc}: {n_fmt}/{total_fmt} {unit}s [{elapsed}<{remaining}, {rate_fmt}]{postfix}", **kwargs)


def step_progress():
    """A TrainerCallback: one bar over training steps with the running loss (instead of the trainer's
    own bar, which also prints every log dict)."""
    from transformers import TrainerCallback

    class StepProgress(TrainerCallback):
        bar = None

        def on_train_begin(self, args, state, control, **kw):
            self.bar = progress(total=state.max_steps, initial=state.global_step, desc="training", unit="step")

        def on_step_end(self, args, state, control, **kw):
            self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args, state, control, logs=None, **kw):
            if self.bar is not None and logs and "loss" in logs:
                self.bar.set_postfix(loss=f"{logs['loss']:.4f}", refresh=False)

        def on_train_end(self, args, state, control, **kw):
            self.bar.close()

    return StepProgress()


def final_line(metrics: dict, run: str) -> str:
    """The one line `--quiet` prints: what tuning did, on the holdout and the question set."""
    h, q = metrics["holdout"], metrics.get("questions")
    line = f"{run}: holdout nDCG@10 base {h['base']['ndcg@10']:.4f} -> tuned {h['tuned']['ndcg@10']:.4f}"
    if q:
        line += f"; {q['n']} questions base {q['base']['ndcg@10']:.4f} -> tuned {q['tuned']['ndcg@10']:.4f} (hybrid {q['hybrid']['ndcg@10']:.4f})"
    return line + f"; report {run}/report.md"


def summary(metrics: dict, run: str) -> list[str]:
    """The closing table: base / tuned / BM25 / hybrid on the holdout, the question set and the history
    yardstick, STS, gate hint."""
    h, q = metrics["holdout"], metrics.get("questions")
    rows = [f"{'nDCG@10':<14}{'base':>8}{'tuned':>8}{'BM25':>8}{'hybrid':>8}   tuned - base [95 % CI]"]
    rows.append(f"{'holdout':<14}" + "".join(f"{h[m]['ndcg@10']:>8.4f}" for m in ("base", "tuned", "bm25", "hybrid"))
                + f"   {h['tuned']['ndcg@10'] - h['base']['ndcg@10']:+.4f} {metrics.get('holdout_delta_ci')}"
                + f"  ({metrics['holdout_size']['queries']} queries)")
    if q:
        rows.append(f"{'questions':<14}" + "".join(f"{q[m]['ndcg@10']:>8.4f}" for m in ("base", "tuned", "bm25", "hybrid"))
                    + f"   {q['delta']:+.4f} {q['delta_ci']}  ({q['n']} questions)")
    if (c := metrics.get("history") or {}).get("n"):  # the newest commits' subjects -> the definitions they touched
        rows.append(f"{'history':<14}" + "".join(f"{c[m]['ndcg@10']:>8.4f}" for m in ("base", "tuned", "bm25", "hybrid"))
                    + f"   {c['delta']:+.4f} {c['delta_ci']}  ({c['n']} commits)")
    s = metrics["sts"]
    rows.append(f"STS-B Spearman: base {s['base_spearman']:.4f}, tuned {s['tuned_spearman']:.4f}; gap added by tuning "
                f"{metrics['added_gap']:+.4f} {metrics['added_gap_ci']}")
    rows.append(f"report: {run}/report.md; next: `repotune gate {run}`, then `repotune publish {run} ...`")
    return rows
