"""Recipes: every shipped one parses, typos and bad values fail with a message that says what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import RECIPES_DIR, Recipe, RecipeError, load_recipe, parse_duration

SHIPPED = sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def test_the_three_documented_recipes_are_shipped():
    assert {"default", "smoke", "colab"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_recipe_parses(name):
    recipe = load_recipe(name)
    assert isinstance(recipe, Recipe)
    assert recipe.name == name
    # and survives the round trip a run directory's config.yaml takes
    path_recipe = load_recipe(RECIPES_DIR / f"{name}.yaml")
    assert path_recipe.to_dict() == recipe.to_dict()


def test_smoke_recipe_is_small():
    recipe = load_recipe("smoke")
    assert recipe.train.max_steps > 0 and recipe.train.max_seq_length <= 128


def test_unknown_key_names_the_key_and_the_valid_keys(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("name: typo\ntrain:\n  max_step: 2\n")
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    message = str(err.value)
    assert "train.max_step" in message
    assert "max_steps" in message and "batch_size" in message  # the valid keys under train


def test_unknown_top_level_section():
    with pytest.raises(RecipeError, match=r"trian.*valid keys under the top level: .*train"):
        load_recipe("smoke", ["trian.max_steps=2"])


def test_set_overrides_are_parsed_as_yaml():
    recipe = load_recipe("smoke", ["train.max_steps=2", "train.time_budget=20m", "pairs.balance_code_share=0.5"])
    assert recipe.train.max_steps == 2 and isinstance(recipe.train.max_steps, int)
    assert recipe.train.time_budget == "20m"
    assert parse_duration(recipe.train.time_budget) == 1200
    assert recipe.pairs.balance_code_share == 0.5
    # the recipe file itself is untouched by an override
    assert load_recipe("smoke").train.max_steps != 2


def test_override_of_an_unknown_key_is_an_error():
    with pytest.raises(RecipeError, match="train.max_step;"):
        load_recipe("smoke", ["train.max_step=2"])


def test_override_without_equals_sign():
    with pytest.raises(RecipeError, match="key=value"):
        load_recipe("smoke", ["train.max_steps"])


def test_missing_recipe_lists_the_shipped_ones():
    with pytest.raises(RecipeError, match="default.*smoke"):
        load_recipe("no-such-recipe")


@pytest.mark.parametrize(
    "text, seconds",
    [("20m", 1200.0), ("90s", 90.0), ("1h", 3600.0), ("1.5h", 5400.0), ("45", 45.0), (" 2m ", 120.0)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["20 minutes", "m", "", "-5m", "1d", "ten"])
def test_parse_duration_rejects_what_it_cannot_read(text):
    with pytest.raises(RecipeError, match="90s"):  # the message shows the accepted form
        parse_duration(text)


def test_bad_time_budget_fails_when_the_recipe_is_read():
    with pytest.raises(RecipeError, match="duration"):
        load_recipe("smoke", ["train.time_budget=twenty minutes"])


@pytest.mark.parametrize(
    "override, expected",
    [
        ("secrets.policy=x", r"secrets.policy must be 'redact' or 'drop', not 'x'"),
        ("split.holdout_fraction=2", r"split.holdout_fraction must be between 0 and 1, e.g. 0.15"),
        ("split.holdout_fraction=0", r"split.holdout_fraction must be between 0 and 1"),
        ("clean.near_dup_threshold=1.5", r"clean.near_dup_threshold must be in \(0, 1\]"),
        ("pairs.balance_code_share=1", r"pairs.balance_code_share must be between 0 and 1"),
        ("train.batch_size=1", r"train.batch_size must be at least 2"),
        ("train.precision=fp8", r"train.precision must be auto, fp32, fp16 or bf16"),
        # wrong types are named with the key and the default, not a TypeError from deep inside
        ("train.max_steps=abc", r"train.max_steps must be an integer, not 'abc' \(the default is -1\)"),
        ("train.batch_size=abc", r"train.batch_size must be an integer"),
        ("clean.near_dup_threshold=high", r"clean.near_dup_threshold must be a number"),
        ("pairs.types=docstring_code", r"pairs.types must be a list of strings"),
        ("pairs.types=[docstring_code, docstrng_code]", r"unknown pair type\(s\) docstrng_code.*valid: docstring_code"),
        ("train.cached_loss=1", r"train.cached_loss must be true or false"),
        ("train=3", r"train must be a mapping"),
        ("pairs.balance=drop", r"pairs.balance must be one of downsample, upsample, got 'drop'"),
        ("pairs.hard_negatives=3", r"pairs.hard_negatives must be 0 \(in-batch negatives only\) or 1"),
        ("train.dev_fraction=0.6", r"train.dev_fraction must be at least 0 \(off\) and below 0.5"),
        ("evaluate.hybrid_alpha=1.5", r"evaluate.hybrid_alpha must be between 0 \(BM25 only\) and 1 \(dense only\)"),
        ("pairs.types=[docstring_code, commit_definition]", r"commit_definition is switched by history.pairs, not by pairs.types"),
        ("history.since=3y", r"history.since must be a window such as '3 years'"),
        ("history.holdout_share=1", r"history.holdout_share must be at least 0 and below 1"),
        ("history.max_definitions=0", r"history.max_definitions 1 or more"),
        ("history.expand=-1", r"history.expand must be 0 or more"),
    ],
)
def test_bad_values_raise_a_helpful_message(override, expected):
    with pytest.raises(RecipeError, match=expected):
        load_recipe("smoke", [override])


def test_every_miner_is_a_pair_type_or_switched_by_a_key_of_its_own():
    from pipeline.config import PAIR_TYPES, SWITCHED_PAIR_TYPES
    from pipeline.mining.pairs import MINERS

    assert set(MINERS) == set(PAIR_TYPES) | set(SWITCHED_PAIR_TYPES) and not set(PAIR_TYPES) & set(SWITCHED_PAIR_TYPES)
    assert load_recipe("default").history.enabled and load_recipe("default").history.pairs  # on by default
    assert load_recipe("smoke", ["history.since=3 years"]).history.since == "3 years"


def test_bad_value_in_a_recipe_file(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text("secrets:\n  policy: x\n")
    with pytest.raises(RecipeError, match="secrets.policy"):
        load_recipe(path)


def test_numbers_are_accepted_where_they_fit():
    recipe = load_recipe("smoke", ["train.epochs=2", "train.learning_rate=5e-5", "train.time_budget=90", "chunk.max_tokens=null"])
    assert recipe.train.epochs == 2.0 and isinstance(recipe.train.epochs, float)
    assert recipe.train.learning_rate == pytest.approx(5e-5)  # YAML 1.1 reads 5e-5 as a string
    assert parse_duration(recipe.train.time_budget) == 90
    assert recipe.chunk.max_tokens is None


def test_to_yaml_round_trips(tmp_path: Path):
    recipe = load_recipe("smoke", ["train.max_steps=2", "train.time_budget=20m"])
    path = tmp_path / "config.yaml"
    path.write_text(recipe.to_yaml())
    assert load_recipe(path).to_dict() == recipe.to_dict()
