"""The adversarial secret corpus (tests/secret_corpus.py): fresh credentials in hundreds of forms, none
of which may survive the scanner or reach any byte of a run directory.

The corpus is drawn on a fixed seed (CORPUS_SEED), so a red test means a change, not a draw; sweeps over seeds are
the bench's (`make bench-secrets`). REPOTUNE_CORPUS_SEED=N draws another corpus, REPOTUNE_CORPUS_SEED=random a fresh
one; the seed is printed in each failure message.
"""

from __future__ import annotations

import collections
import json
import os
import random
import re
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from secret_corpus import (
    CATEGORIES,
    PATH,
    PLACEHOLDER_LINES,
    CorpusFile,
    base_form,
    forms,
    generate,
    leaks,
    run_dir_blobs,
)
from secret_files import PLANTED, SECRET_FILES
from support import FIXTURE_FILES, git_init, write_files

from pipeline.secrets.values import says_placeholder

CORPUS_SEED = 32
_SEED = os.environ.get("REPOTUNE_CORPUS_SEED") or str(CORPUS_SEED)
SEED = random.SystemRandom().randrange(2**32) if _SEED == "random" else int(_SEED)
REPRO = f"corpus seed {SEED} (rerun with REPOTUNE_CORPUS_SEED={SEED})"


@pytest.fixture(scope="module")
def corpus() -> list[CorpusFile]:
    return generate(SEED)


@pytest.fixture(scope="module")
def scanner():
    from pipeline.secrets import SecretScanner

    with SecretScanner() as s:
        yield s


def _file_type(path: str) -> str:
    p = PurePosixPath(path)
    return p.suffix or p.name


def _in_path(f: CorpusFile) -> bool:
    return any(p.value in f.path for p in f.planted)


def _report(found: list[tuple[str, str, str]], files: list[CorpusFile]) -> str:
    """Leaks grouped by category, then form: every leaking form at once, not only the first."""
    category = {p.form: p.category for f in files for p in f.planted}
    by_cat: dict[str, dict[str, list[str]]] = collections.defaultdict(lambda: collections.defaultdict(list))
    for form, where, what in found:
        by_cat[category[form]][base_form(form)].append(f"{where}: {what}")
    lines = [f"{len({base_form(f) for f, _, _ in found})} forms leak; {REPRO}"]
    for cat in sorted(by_cat):
        lines.append(f"[{cat}] {len(by_cat[cat])} forms")
        lines += [f"  {form}: {'; '.join(sorted(set(wheres))[:3])}" for form, wheres in sorted(by_cat[cat].items())]
    return "\n".join(lines)


# --- the corpus itself ---------------------------------------------------------------------------------

def test_corpus_is_large_and_varied(corpus):
    assert len(forms()) >= 150
    assert {base_form(p.form) for f in corpus for p in f.planted} == set(forms()), REPRO
    assert len({_file_type(f.path) for f in corpus}) >= 12
    by_category = collections.defaultdict(set)
    for f in corpus:
        for p in f.planted:
            assert p.category in CATEGORIES, p
            assert len(p.random) >= 12 and p.random in p.value, (p, REPRO)
            assert p.value in f.text or p.value in f.path, (f.path, p.form, REPRO)
            by_category[p.category].add(_file_type(f.path))
    assert set(by_category) == set(CATEGORIES)
    assert all(len(types) >= 2 for types in by_category.values()), dict(by_category)
    # ordinary files: within the clean stage's shape limits, and no window of any random part occurs
    # in the text around the values (else a redacted file would read as a leak)
    for f in corpus:
        lines = f.text.split("\n")
        assert max(map(len, lines)) <= 1000 and sum(map(len, lines)) / len(lines) <= 100, f.path
        rest = f.text
        for p in sorted(f.planted, key=lambda p: -len(p.value)):
            rest = rest.replace(p.value, "")
        assert leaks(corpus, {f.path: rest.encode()}) == [], (f.path, REPRO)


def test_fresh_values_every_call_and_a_seed_reproduces_them():
    assert [f.text for f in generate(7)] == [f.text for f in generate(7)]
    a, b = generate(), generate()
    assert not {p.random for f in a for p in f.planted} & {p.random for f in b for p in f.planted}


def test_leaks_finds_whole_values_and_windows_of_the_random_part(corpus):
    p = next(p for f in corpus if not _in_path(f) for p in f.planted if len(p.random) >= 15)
    assert leaks(corpus, {"x": b"nothing here"}) == []
    assert [(form, where) for form, where, _ in leaks(corpus, {"x": p.value.encode()})] == [(p.form, "x")]
    window = p.random[3:15].upper().encode()  # a piece, in another case: still a leak
    assert [form for form, _, _ in leaks(corpus, {"y": b"..." + window + b"..."})] == [p.form]


# --- the scanner, file by file -------------------------------------------------------------------------

def test_scanner_redacts_every_planted_form(corpus, scanner):
    found, changed_lines = [], []
    for f in corpus:
        if _in_path(f):
            continue  # a credential in a file name is the build's to handle (see the run-directory test)
        redacted, _findings = scanner.redact(f.text, f.path)
        found += leaks(corpus, {"redacted:" + f.path: redacted.encode()})
        if redacted.count("\n") != f.text.count("\n"):
            changed_lines.append(f.path)
    assert not found, _report(found, corpus)
    assert not changed_lines, f"line count changed by redaction in {changed_lines}; {REPRO}"


def test_placeholders_are_left_alone(scanner):
    damaged = []
    for line in PLACEHOLDER_LINES:
        for path, text in (("pkg/placeholder.py", f"# settings of the worker\n{line}\nprint('ready')\n"),
                           ("docs/placeholder.md", f"# Configuration\n\nSet it like this:\n\n```\n{line}\n```\n")):
            redacted, findings = scanner.redact(text, path)
            if redacted != text or findings:
                damaged.append(f"{path}: {line!r} -> {findings}")
    assert not damaged, "placeholders changed or reported:\n" + "\n".join(damaged)


# --- the whole build -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus_run(corpus, tiny_model, tmp_path_factory) -> Path:
    from pipeline.build import build
    from pipeline.config import load_recipe

    # the generated corpus beside the hand-written planted files (tests/secret_files.py): one build, one whole-run check
    files = {f.path: f.text for f in corpus}
    assert not set(files) & set(FIXTURE_FILES) and not set(files) & set(SECRET_FILES)
    files |= SECRET_FILES
    root = tmp_path_factory.mktemp("corpus")
    repo = write_files(root / "repo", {**FIXTURE_FILES, **files})
    git_init(repo)
    out = root / "run"
    build(repo, out, load_recipe("smoke", [f"train.base_model={tiny_model}"]))
    return out


def test_no_planted_value_reaches_the_run_directory(corpus, corpus_run):
    from datasets import load_from_disk

    from pipeline.ingest.collect import classify

    blobs = run_dir_blobs(corpus_run)
    assert len(blobs) > 10 and any(name.endswith(".arrow") for name in blobs)
    problems = []
    found = leaks(corpus, blobs)
    if found:
        problems.append(_report(found, corpus))
    written = [(name, path) for name, value in PLANTED.items() for path, blob in blobs.items() if value.encode() in blob]
    if written:
        problems.append(f"hand-written planted values (tests/secret_files.py) in the run: {written}")
    # not passed by dropping everything: most files the build can read must be in the corpus
    kept = {path.split("#", 1)[0] for path in load_from_disk(str(corpus_run / "dataset" / "corpus"))["path"]}
    readable = [f.path for f in corpus if not _in_path(f) and classify(f.path)[0] != "other"]
    missing = sorted(set(readable) - kept)
    if len(missing) > 0.2 * len(readable):
        stats = {p.name: p.read_text() for p in sorted((corpus_run / "stats").glob("*.json"))}
        problems.append(f"{len(missing)}/{len(readable)} readable files are not in the corpus: {missing}; stats: {stats}; {REPRO}")
    assert not problems, "\n".join(problems)


def test_a_file_dropped_for_a_secret_in_its_path_is_recorded_redacted(corpus, corpus_run):
    """dropped/secrets.jsonl names each such file by its redacted path (the leak check above reads every byte of it)."""
    lines = [json.loads(line) for line in (corpus_run / "dropped" / "secrets.jsonl").read_text().splitlines()]
    in_path = [line["path"] for line in lines if line["reason"] == "secret_in_path"]
    assert len(in_path) == json.loads((corpus_run / "stats" / "secrets.json").read_text())["dropped_secret_in_path"] >= 3
    assert all("<SECRET:" in path for path in in_path), in_path


def test_path_forms_are_planted_in_paths(corpus):
    in_paths = [p for f in corpus for p in f.planted if p.category == PATH]
    assert len(in_paths) >= 3
    assert all(any(p.value in f.path for f in corpus) for p in in_paths)


# --- token68 credentials of the Authorization header, in every quoting style ----------------------------

_TOKEN68 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"
_STYLES = {
    "bare header": "Authorization: {scheme} {value}",
    "double quoted": 'headers = ["Authorization: {scheme} {value}"]',
    "single quoted": "headers = ['Authorization: {scheme} {value}']",
    "json": '{{"Authorization": "{scheme} {value}"}}',
    "python dict": "session.headers.update({{'Authorization': '{scheme} {value}'}})",
    "curl -H": 'curl -H "Authorization: {scheme} {value}" https://api.example.internal/v1/items',
}


@settings(max_examples=200, deadline=None)
@given(body=st.text(_TOKEN68, min_size=16, max_size=60), padding=st.sampled_from(["", "=", "=="]),
       scheme=st.sampled_from(["Basic", "Bearer"]))
def test_token68_credentials_in_every_quoting_style(scanner, body, padding, scheme):
    # a body of very few distinct characters reads as a placeholder (xxxx…), which a scanner may rightly keep
    assume(len(set(body)) >= 5)
    assume(not says_placeholder(body))  # a stand-in word of its own ("Sample", "TODO") marks a placeholder too
    assume(all(body not in style for style in _STYLES.values()))
    value = body + padding
    lines = [style.format(scheme=scheme, value=value) for style in _STYLES.values()]
    text = "# calls to the items API\n" + "\n".join(lines) + "\n"
    redacted, _ = scanner.redact(text, "scripts/calls.py")
    # the marker names the rule (<SECRET:http_authorization>), which a generated body may spell out
    unmarked = re.sub(r"<SECRET:[\w\-]+>", "", redacted)
    kept = [name for name, line in zip(_STYLES, unmarked.split("\n")[1:]) if body in line]
    assert not kept, f"{scheme} {value!r} survives in: {kept}"
    assert redacted.count("\n") == text.count("\n")


# --- a stand-in word drawn by chance inside a random token ------------------------------------------------

_BECH32 = "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"


@pytest.mark.parametrize("value, stand_in", [
    ("AKIAIOSFODNN7EXAMPLE", True), ("sk_test_fake_key_1234", True), ("ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", True),
    ("AKIAXXXXXXXXXXXXXXXX", True), ("sk-proj-XXXX-XXXX", True), ("ExampleToken1234", True),
    # drawn by chance, glued into the token: a credential (the first is the corpus's seed 4274459656)
    ("AGE-SECRET-KEY-19CAUUWUYYRJHM3TRYDJURTL5PPSM5FAKELWPRJHCZWW4RKJDCJS4QZF50C", False),
    ("9GX2MOCK7TQ0P3XXXXD5LW8ZQ", False), ("napi_0k4fake9qzp2mock3xxxx7vbn", False),
])
def test_a_stand_in_word_counts_only_as_a_word_of_its_own(value, stand_in):
    from pipeline.secrets.values import is_placeholder

    assert is_placeholder(value) is stand_in
    assert says_placeholder(value) is stand_in


@settings(max_examples=150, deadline=None)
@given(head=st.text(_BECH32, min_size=23, max_size=30), tail=st.text(_BECH32, min_size=23, max_size=30),
       word=st.sampled_from(["FAKE", "MOCK", "HERE", "TODO", "XXXX", "DUMMY", "SAMPLE"]))
def test_an_age_key_holding_a_stand_in_word_by_chance_is_redacted(scanner, head, tail, word):
    # the word glued between random characters, a letter on its right as the corpus drew it
    value = f"AGE-SECRET-KEY-1{head}{word}L{tail}"  # the body: 50 characters or more, as the format has
    text = f"# Encrypted backups\n\nThe identity file holds the single line `{value}`.\n"
    redacted, findings = scanner.redact(text, "docs/backups.md")
    assert value not in redacted and head + word not in redacted, findings
