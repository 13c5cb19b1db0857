"""clean: every drop counted under its reason, every kept file normalised."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from support import write_files

from pipeline.config import CleanConfig, CollectConfig
from pipeline.ingest.clean import clean, normalise
from pipeline.ingest.collect import collect
from pipeline.records import SourceFile
from pipeline.stage import StageStats

# a real-looking Python file: passes every shape rule
GOOD = '''"""Utilities for reading the settings file."""

import os


def read_settings(path):
    """Return the settings text, or None when the file is missing."""
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        return handle.read()
'''


def run_clean(root: Path, collect_config: CollectConfig | None = None, **clean_config):
    collect_config = collect_config or CollectConfig(exclude=[])
    cstats, stats = StageStats("collect"), StageStats("clean")
    kept = {f.path: f for f in clean(collect(root, collect_config, cstats), CleanConfig(**clean_config), stats, collect_config)}
    return kept, stats


def words(n: int, seed: int) -> str:
    rng = random.Random(seed)
    vocab = [f"{rng.choice('bcdfghklmnprstvz')}{rng.choice('aeiou')}{rng.choice('bcdfghklmnprstvz')}{i}" for i in range(400)]
    return " ".join(rng.choice(vocab) for _ in range(n))


def test_good_file_is_kept_and_counted(tmp_path):
    root = write_files(tmp_path / "r", {"util.py": GOOD})
    kept, stats = run_clean(root)
    assert list(kept) == ["util.py"]
    assert kept["util.py"].text == GOOD.rstrip("\n")
    assert kept["util.py"].abs_path == ""  # text loaded
    assert dict(stats) == {"kept": 1}


# --- reading and decoding --------------------------------------------------------------------------

def test_binary_file_with_a_py_extension_is_dropped(tmp_path):
    root = write_files(tmp_path / "r", {"fake.py": b"import os\n\x00\x01\x02\xff binary payload", "util.py": GOOD})
    kept, stats = run_clean(root)
    assert set(kept) == {"util.py"}
    assert stats["dropped_binary"] == 1 and stats["kept"] == 1


def test_a_file_not_in_utf8_is_decoded_by_its_detected_encoding_and_counted(tmp_path):
    text = "# caf\xe9 r\xe9sum\xe9: na\xefve settings reader, the old one from the Paris office\n" + GOOD
    japanese = "# 設定ファイルを読み込むモジュールです。パスワードはここに書かないでください。\n" + GOOD
    root = write_files(tmp_path / "r", {"legacy.py": text.encode("latin-1"), "jp.py": japanese.encode("shift_jis")})
    kept, stats = run_clean(root)
    assert "café résumé: naïve" in kept["legacy.py"].text
    assert "設定ファイルを読み込む" in kept["jp.py"].text  # not mojibake (Latin-1 read it as "Ý’èƒtƒ@ƒCƒ‹")
    assert stats["decoded_cp932"] + stats["decoded_shift_jis"] == 1 and stats["decoded_latin_1"] == 1 and stats["kept"] == 2
    assert sum(v for k, v in stats.items() if k.startswith("decoded_")) == 2


def test_utf8_bom_is_stripped(tmp_path):
    root = write_files(tmp_path / "r", {"bom.py": b"\xef\xbb\xbf" + GOOD.encode()})
    kept, _ = run_clean(root)
    assert kept["bom.py"].text.startswith('"""Utilities')
    assert "\ufeff" not in kept["bom.py"].text


def test_crlf_and_trailing_spaces_are_normalised(tmp_path):
    raw = GOOD.replace("\n", "   \r\n").encode()
    root = write_files(tmp_path / "r", {"win.py": raw})
    kept, _ = run_clean(root)
    text = kept["win.py"].text
    assert "\r" not in text
    assert all(line == line.rstrip() for line in text.split("\n"))
    assert text == GOOD.rstrip("\n")


def test_normalise_keeps_line_numbers():
    # leading blank lines stay: chunk spans and the secrets report point at the file's real lines
    assert normalise("\n\nx = 1  \r\ny = 2\r\n\n\n") == "\n\nx = 1\ny = 2"
    assert normalise("a\rb") == "a\nb"  # old Mac line ends


def test_fifty_megabyte_single_line_is_dropped_without_being_read(tmp_path, monkeypatch):
    root = tmp_path / "r"
    root.mkdir()
    with open(root / "huge.js", "wb") as f:  # sparse: 50 MB on paper, no time or disk spent
        f.seek(50 * 1024 * 1024 - 1)
        f.write(b";")
    (root / "util.py").write_text(GOOD)
    read: list[str] = []
    real = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: (read.append(self.name), real(self))[1])
    kept, stats = run_clean(root)
    assert set(kept) == {"util.py"}
    assert stats["dropped_too_large"] == 1
    assert read == ["util.py"]  # huge.js was judged on its size alone


def test_max_file_bytes_is_the_recipe_limit(tmp_path):
    root = write_files(tmp_path / "r", {"util.py": GOOD})
    kept, stats = run_clean(root, CollectConfig(exclude=[], max_file_bytes=len(GOOD) - 1))
    assert kept == {} and stats["dropped_too_large"] == 1


def test_unreadable_file_is_dropped(tmp_path):
    root = write_files(tmp_path / "r", {"secret_perms.py": GOOD, "util.py": GOOD.replace("settings", "options")})
    path = root / "secret_perms.py"
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as root: a chmod 000 file is still readable")
        kept, stats = run_clean(root)
        assert set(kept) == {"util.py"}
        assert stats["dropped_unreadable"] == 1
    finally:
        path.chmod(0o644)


def test_a_read_error_is_counted_as_unreadable(tmp_path):
    """The same rule without needing a non-root user: the path vanished or turned into a folder."""
    (tmp_path / "gone.py").mkdir()
    source = SourceFile("gone.py", "code", "python", size=10, abs_path=str(tmp_path / "gone.py"))
    stats = StageStats("clean")
    assert list(clean([source], CleanConfig(), stats)) == []
    assert stats["dropped_unreadable"] == 1


# --- content rules ---------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("model.bin.md", "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n", "lfs_pointer"),
        ("api_pb2.py", "# -*- coding: utf-8 -*-\n# Generated by the protocol buffer compiler.  DO NOT EDIT!\n" + GOOD, "generated"),
        ("schema.ts", "// @generated by codegen\n" + GOOD.replace('"""', "//"), "generated"),
        ("bundle.min.js", "var a=function(b){return b+1};" * 40 + "\n", "max_line_length"),
        ("wide.py", "\n".join(f"value_{i} = '{words(30, i)}'" for i in range(20)) + "\n", "mean_line_length"),
        ("art.md", "\n".join(["+--+--+--+--+", "|  |  |  |  |", "+==+==+==+==+"] * 10) + "\n", "low_alnum_share"),
        ("blank.py", "\n\n   \n\t\n", "empty"),
    ],
)
def test_content_rules_drop_with_their_reason(tmp_path, name, content, reason):
    root = write_files(tmp_path / "r", {name: content, "util.py": GOOD})
    kept, stats = run_clean(root)
    assert set(kept) == {"util.py"}
    assert stats.dropped() == {reason: 1}
    assert stats["kept"] == 1


def test_generated_marker_only_counts_near_the_top(tmp_path):
    late = GOOD + "\n".join(f"# line {i}" for i in range(10)) + "\n# this file is not generated by any tool, do not edit casually\n"
    root = write_files(tmp_path / "r", {"late.py": late})
    kept, stats = run_clean(root)
    assert set(kept) == {"late.py"}


def test_thresholds_come_from_the_recipe(tmp_path):
    line = "x = " + "1 + " * 200 + "1\n"  # ~800 characters: kept at 1000, dropped at 500
    root = write_files(tmp_path / "r", {"long.py": line})
    kept, _ = run_clean(root, max_mean_line_length=10_000)
    assert set(kept) == {"long.py"}
    kept, stats = run_clean(root, max_line_length=500, max_mean_line_length=10_000)
    assert kept == {} and stats["dropped_max_line_length"] == 1


def test_a_few_long_lines_keep_their_file_and_are_cut_by_the_chunker(tmp_path):
    """A file whose long lines are a small part of it (a colour table in a main.rs, a long doc comment) is kept; one
    they make up most of (minified, data) is dropped."""
    table = "const LS_COLORS: &str = \"" + ":".join(f"*.ext{i}=0;38;5;{i % 256}" for i in range(150)) + "\";\n"
    body = "\n".join(f"fn step_{i}(x: u32) -> u32 {{ x + {i} }}" for i in range(150)) + "\n"
    root = write_files(tmp_path / "r", {"main.rs": table + body, "table.rs": table * 3 + "fn main() {}\n"})
    kept, stats = run_clean(root)
    assert len(table) > 1000 and len(table) < 0.5 * len(table + body)
    assert set(kept) == {"main.rs"} and stats.dropped() == {"max_line_length": 1}


# --- path rules ------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["vendor/lib.py", "third_party/x/y.py", "web/node_modules/pkg/index.js", "src/External/helper.py"])
def test_vendored_directories_are_dropped(tmp_path, path):
    root = write_files(tmp_path / "r", {path: GOOD.replace("settings", "vendored"), "util.py": GOOD})
    kept, stats = run_clean(root)
    assert set(kept) == {"util.py"}
    assert stats["dropped_vendored"] == 1


def test_a_file_named_like_a_vendor_dir_is_not_vendored(tmp_path):
    root = write_files(tmp_path / "r", {"vendor.py": GOOD})
    kept, stats = run_clean(root)
    assert set(kept) == {"vendor.py"}


@pytest.mark.parametrize("name", ["package-lock.json", "web/pnpm-lock.yaml", "npm-shrinkwrap.json"])
def test_lock_files_are_dropped(tmp_path, name):
    root = write_files(tmp_path / "r", {name: '{"name": "x", "version": "1.0.0", "lockfileVersion": 3}\n', "util.py": GOOD})
    kept, stats = run_clean(root)
    assert set(kept) == {"util.py"}
    assert stats["dropped_lock_file"] == 1


@pytest.mark.parametrize("name", ["poetry.lock", "Cargo.lock", "uv.lock", "go.sum", "Gemfile.lock", "yarn.lock"])
def test_lock_file_rule_covers_lock_files_collect_would_not_list(name):
    # collect already drops these as unsupported types; the rule still holds if a recipe or a
    # classifier change ever lets them through
    source = SourceFile(f"sub/{name}", "code", "toml", text='name = "x"\nversion = "1.0.0"\n')
    stats = StageStats("clean")
    assert list(clean([source], CleanConfig(), stats)) == []
    assert stats.dropped() == {"lock_file": 1}


# --- duplicates ------------------------------------------------------------------------------------

def test_exact_duplicates_keep_the_first_copy(tmp_path):
    root = write_files(tmp_path / "r", {"a/util.py": GOOD, "b/util.py": GOOD, "c/util.py": GOOD.replace("\n", "\r\n")})
    kept, stats = run_clean(root)
    assert set(kept) == {"a/util.py"}  # c/ differs only in line endings: a duplicate after normalising
    assert stats["dropped_exact_duplicate"] == 2 and stats["kept"] == 1


def test_near_duplicates_by_minhash(tmp_path):
    base = "\n".join(f"# {words(12, i)}" for i in range(30))
    near = base.replace(words(12, 3), words(12, 1003))  # one line of thirty changed
    different = "\n".join(f"# {words(12, 500 + i)}" for i in range(30))
    root = write_files(tmp_path / "r", {"a.py": base, "b.py": near, "c.py": different})
    kept, stats = run_clean(root)
    assert set(kept) == {"a.py", "c.py"}
    assert stats["dropped_near_duplicate"] == 1


def test_near_duplicate_threshold_is_the_recipe_value(tmp_path):
    base = "\n".join(f"# {words(12, i)}" for i in range(30))
    half = "\n".join(f"# {words(12, i)}" for i in range(15)) + "\n" + "\n".join(f"# {words(12, 900 + i)}" for i in range(15))
    root = write_files(tmp_path / "r", {"a.py": base, "b.py": half})
    kept, _ = run_clean(root)  # Jaccard ~0.33: not a near duplicate at 0.7
    assert set(kept) == {"a.py", "b.py"}
    kept, stats = run_clean(root, near_dup_threshold=0.2)
    assert set(kept) == {"a.py"} and stats["dropped_near_duplicate"] == 1


def test_every_drop_is_counted_once(tmp_path):
    files = {
        "util.py": GOOD,
        "copy.py": GOOD,
        "vendor/v.py": GOOD.replace("settings", "vendor"),
        "package-lock.json": '{"lockfileVersion": 3, "name": "x"}\n',
        "bin.py": b"\x00\x00",
        "gen.py": "# AUTO-GENERATED FILE\n" + GOOD.replace("settings", "generated"),
    }
    root = write_files(tmp_path / "r", files)
    kept, stats = run_clean(root)
    assert set(kept) == {"copy.py"}  # files come in path order: the first copy seen is kept
    assert stats["kept"] + sum(stats.dropped().values()) == len(files)
    assert stats.dropped() == {"binary": 1, "exact_duplicate": 1, "generated": 1, "lock_file": 1, "vendored": 1}


def test_stats_are_written_as_json(tmp_path):
    stats = StageStats("clean")
    stats["kept"] += 2
    stats.drop("binary", "x.py")
    stats.write(tmp_path / "stats")
    assert (tmp_path / "stats" / "clean.json").read_text() == '{\n  "dropped_binary": 1,\n  "kept": 2\n}\n'


def test_minhash_is_datasketchs_default_minhash_of_the_shingles():
    """The shingle hashes are computed in one buffer, and reused from a file for its chunks: the
    signature must stay the one datasketch's own SHA-1 hashing gives (the dataset hash depends on it)."""
    from datasketch import MinHash

    from pipeline.ingest.clean import minhash

    config = CleanConfig()
    texts = ["", "one", "a b c d e", "a b c d e f g", "def add(a, b):\n    return a + b  # caf\u00e9\n" * 20]
    cache: dict[str, int] = {}
    for text in texts:
        words = __import__("re").findall(r"\w+", text)
        shingles = {" ".join(words[i : i + 5]).encode() for i in range(max(1, len(words) - 4))}
        reference = MinHash(num_perm=config.num_perm, seed=1)
        reference.update_batch(list(shingles))
        assert list(minhash(text, config).hashvalues) == list(reference.hashvalues)
        assert list(minhash(text, config, cache).hashvalues) == list(reference.hashvalues)  # cached hashes too
