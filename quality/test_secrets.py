"""Gate: zero secret findings (the build's own scanners: Kingfisher, detect-secrets, repotune's rules) in every text of the
dataset and in every file of the run that publish could upload (cards, reports, checkpoints)."""

import pytest

from pipeline.rundir import is_text_file, known_identifiers
from pipeline.secrets import SecretScanner

pytestmark = [pytest.mark.governance, pytest.mark.secrets]


def _report(findings: list[tuple[str, str, int]]) -> str:
    return "; ".join(f"{t} in {p}:{line}" for t, p, line in findings[:20])  # type and place, never the value


@pytest.fixture(scope="module")
def scanner():
    with SecretScanner() as s:
        yield s


def test_no_secret_in_dataset(pairs, corpus, scanner, policy, check):
    found = []
    for split in pairs:
        for i, row in enumerate(pairs[split]):
            for column in ("anchor", "positive"):
                found += [(h.type, f"pairs/{split}[{i}].{column}", h.line) for h in scanner.scan(row[column], row["path"])]
    for row in corpus:
        found += [(h.type, f"corpus:{row['id']}", h.line) for h in scanner.scan(row["text"], row["path"])]
    limit = policy["secrets"]["max_findings"]
    check(len(found), f"<= {limit}", len(found) <= limit,
          f"secrets in the dataset: {_report(found)}. Rebuild with `secrets.policy: drop`, or remove the secret from the repository")


def test_no_secret_in_uploadable_files(run, manifest, scanner, policy, check):
    # the run's own identifiers are hex strings detect-secrets calls high-entropy: allow exactly those
    allow = known_identifiers(manifest, run.model_hash(), [run.root])
    found = []
    # every text file, the dataset card included; the dataset's rows were scanned above
    data_dirs = (run.pairs, run.corpus)
    files = [p for p in sorted(run.root.rglob("*")) if p.is_file() and not any(d in p.parents for d in data_dirs) and is_text_file(p)]
    for path in files:
        rel = path.relative_to(run.root).as_posix()
        found += [(h.type, rel, h.line) for h in scanner.scan(path.read_text(errors="replace"), rel, allow)]
    limit = policy["secrets"]["max_findings"]
    check(len(found), f"<= {limit}", len(found) <= limit,
          f"secrets in files publish could upload ({len(files)} scanned): {_report(found)}. Delete the run and rebuild after removing the secret")
