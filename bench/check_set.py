"""Check a question set against a run's chunk corpus before a bench spends an hour on it: every
``relevant`` entry that matches no chunk, and every question left with none (which evaluate refuses).
``--symbols PATH`` lists the chunks of one file (symbol, lines, first line of text), to label from.

    python -m bench.check_set runs/bench/sets/llm bench/questions/llm.jsonl
    python -m bench.check_set runs/bench/sets/llm --symbols llm/cli.py
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict

from pipeline.dataset import load_corpus
from pipeline.evaluation.questions import load_questions, matches
from pipeline.mining.split import file_of
from pipeline.rundir import RunDir


def unmatched(set_path: str, rows: list[dict]) -> tuple[list[str], int]:
    """Lines describing each entry that matches no chunk, and how many questions have no match at all."""
    by_file: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_file[file_of(row["path"])].append(row)
    problems, empty = [], 0
    for q in load_questions(set_path):
        hits = [sum(matches(e, r) for r in by_file.get(e["path"], [])) for e in q.relevant]
        problems += [f"line {q.line}: no chunk for {e}" for e, n in zip(q.relevant, hits) if not n]
        if not any(hits):
            empty += 1
            problems.append(f"line {q.line}: NO relevant chunk at all: {q.query!r}")
    return problems, empty


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
