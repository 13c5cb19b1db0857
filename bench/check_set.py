"""Check a question set against a run's chunk corpus before a bench spends an hour on it: every
``relevant`` entry that matches no chunk, and every question left with none (which evaluate refuses).
``--symbols PATH`` lists the chunks of one file (symbol, lines, first line of text), to label from.

    python -m bench.check_set runs/bench/sets/llm bench/questions/llm.jsonl
    python -m bench.check_set runs/bench/sets/llm --symbols llm/cli.py
"""

from __future__ import annotations

import argparse
import sys

from pipeline.common import file_of
from pipeline.dataset import load_corpus
from pipeline.evaluation.questions import unmatched
from pipeline.rundir import RunDir


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run")
    ap.add_argument("questions", nargs="?")
    ap.add_argument("--symbols", metavar="PATH", help="list the chunks of this file instead")
    args = ap.parse_args()
    rows = list(load_corpus(RunDir(args.run)))
    if args.symbols:
        for r in rows:
            if file_of(r["path"]) == args.symbols:
                first = next((line for line in r["text"].splitlines() if line.strip()), "")[:80]
                print(f"{r['symbol'] or '-':40} {r['start_line']}-{r['end_line']}  {first}")
        return 0
    problems, empty = unmatched(args.questions, rows)
    print("\n".join(problems) or "every entry matches a chunk")
    return 1 if empty else 0


if __name__ == "__main__":
    sys.exit(main())
