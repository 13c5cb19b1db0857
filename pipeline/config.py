"""Recipes: one YAML file per run, read into typed dataclasses.

Unknown keys are errors; ``--set section.key=value`` overrides a key (the value is parsed as
YAML, so ``--set train.max_steps=2`` gives an int). Each dataclass validates in
``__post_init__`` with a message that says how to fix the recipe.

Over 350 lines: one dataclass per recipe section, each with the checks and messages of its own keys; the
recipe's whole contract in one place; docs/recipes.md is generated from it (docs/hooks.py).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from .errors import RepotuneError

RECIPES_DIR = Path(__file__).parent / "recipes"


class RecipeError(RepotuneError, ValueError):
    """A recipe or an override is wrong; the message says what to change."""


@dataclass
class BuildConfig:
    # processes that read, clean, scan and chunk files (each file on its own; duplicates, pairs and the
    # split are decided in order by the main process, so any count gives the same dataset). 0: one per
    # CPU core; 1: no pool, everything in this process
    workers: int = 0

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise RecipeError("build.workers must be 0 (one per CPU core), 1 (no worker processes) or more")


@dataclass
class CollectConfig:
    include: list[str] = field(default_factory=list)  # glob patterns; empty means everything
    exclude: list[str] = field(default_factory=lambda: ["runs/**", ".venv/**"])  # glob patterns never collected (counted as excluded)
    max_file_bytes: int = 2_000_000  # files above this are dropped as too_large before reading
    # the repository's licence as an SPDX id (mit, apache-2.0, bsd-3-clause, ...) for the cards: null reads the
    # repository's LICENSE / COPYING file; set it where that file is missing or not recognised (the cards say "other")
    license: str | None = None


@dataclass
class CleanConfig:
    # BigCode preprocessing thresholds (bigcode-dataset/preprocessing/README.md)
    max_line_length: int = 1000  # characters; longer lines mean minified or data
    # share of a file's characters in lines over max_line_length at which the file is dropped as minified or data; under
    # it the file is kept and its long lines are cut by the chunker (a long doc comment, a colour table in a main.rs)
    max_long_line_share: float = 0.5
    max_mean_line_length: int = 100  # characters
    min_alnum_share: float = 0.25  # share of alphanumeric characters
    near_dup_threshold: float = 0.7  # MinHash Jaccard estimate at which a file is a near-duplicate
    shingle_size: int = 5  # word 5-grams
    num_perm: int = 128  # MinHash permutations: precision vs speed

    def __post_init__(self) -> None:
        if not 0 < self.near_dup_threshold <= 1:
            raise RecipeError("clean.near_dup_threshold must be in (0, 1], e.g. 0.7")


@dataclass
class SecretsConfig:
    policy: str = "redact"  # "redact": replace each finding by <SECRET:type>; "drop": drop the file

    def __post_init__(self) -> None:
        if self.policy not in ("redact", "drop"):
            raise RecipeError(f"secrets.policy must be 'redact' or 'drop', not {self.policy!r}")


@dataclass
class ChunkConfig:
    max_tokens: int | None = None  # None: the base model's max_seq_length
    min_chars: int = 20  # shorter pieces are merged into a neighbour or dropped (counted)
    # embed each chunk under a "path symbol" header line (common.embed_text), alike in training,
    # evaluation, search and the MTEB task. On by default: measured better on the question sets
    # (bench/results/README.md); false embeds the chunk text alone
    context: bool = True


# the miners in pairs.py (pairs.MINERS), listed here so that a typo fails when the recipe is read
PAIR_TYPES = ("docstring_code", "heading_section", "mention_definition", "comment_block", "module_summary",
              "identifier_query", "test_behaviour")
DEFAULT_PAIR_TYPES = PAIR_TYPES[:5]  # the query-like miners are opt-in until measured better (bench/results/README.md)
# pair types with a switch of their own, not listed in pairs.types
SWITCHED_PAIR_TYPES = {"generated_query": "pairs.generator", "commit_definition": "history.pairs"}
BALANCE_MODES = ("downsample", "upsample")


@dataclass
class PairsConfig:
    types: list[str] = field(default_factory=lambda: list(DEFAULT_PAIR_TYPES))  # the pair miners to run (PAIR_TYPES lists them all)
    min_body_lines: int = 3  # CodeSearchNet: bodies of 3+ lines
    min_docstring_tokens: int = 3  # CodeSearchNet: docstrings of 3+ tokens (whitespace words)
    balance_code_share: float | None = None  # code share of the pairs training sees (null: as mined)
    # upsample: keep every pair, repeat the minority kind in training (the dataset keeps all pairs; the card says what
    # training saw); downsample: drop pairs of the majority kind at build, which on a code-heavy repository discards
    # most of its signal (the requests package: 231 of 238 pairs)
    balance: str = "upsample"
    # per pair, a hard negative mined by sentence_transformers.util.mine_hard_negatives with the base
    # model (0: in-batch negatives only); never from the positive's own file
    hard_negatives: int = 0
    # a seq2seq question writer (doc2query style: a Hub id such as doc2query/msmarco-t5-base-v1, or a
    # local folder) that writes `generator_queries` questions per chunk (pair type generated_query).
    # Off by default; meant for a GPU (Colab). Its quality was not measured here (no network).
    generator: str | None = None
    generator_queries: int = 3  # questions the generator writes per chunk

    def __post_init__(self) -> None:
        unknown = sorted(set(self.types) - set(PAIR_TYPES))
        switched = [f"{t} is switched by {SWITCHED_PAIR_TYPES[t]}" for t in unknown if t in SWITCHED_PAIR_TYPES]
        if switched:
            raise RecipeError(f"{'; '.join(switched)}, not by pairs.types")
        if unknown:
            raise RecipeError(f"unknown pair type(s) {', '.join(unknown)} in pairs.types; valid: {', '.join(PAIR_TYPES)}")
        if self.balance not in BALANCE_MODES:
            raise RecipeError(f"pairs.balance must be one of {', '.join(BALANCE_MODES)}, got {self.balance!r}")
        if self.hard_negatives not in (0, 1):
            raise RecipeError("pairs.hard_negatives must be 0 (in-batch negatives only) or 1 (one mined negative per pair)")
        if self.balance_code_share is not None and not 0 < self.balance_code_share < 1:
            raise RecipeError("pairs.balance_code_share must be between 0 and 1 (e.g. 0.5) or null")


@dataclass
class SplitConfig:
    holdout_fraction: float = 0.15  # share of files held out, per kind
    # a small repository's holdout is topped up to this many pairs: more of its files are held out (seeded, one at a
    # time) while the holdout stays at most MAX_TOPPED_UP_SHARE of the pairs; 0: off. The gate's dataset_size check
    # asks for 10 (policy min_holdout_pairs): fewer queries measure nothing
    min_holdout_pairs: int = 10
    # the run's data seed: the held-out files, pair sampling and balance, the dev split, hard negatives, up-sampling
    # and evaluation's samples all draw from it (train.seed is the trainer's own: its shuffling and dropout)
    seed: int = 42

    def __post_init__(self) -> None:
        if not 0 < self.holdout_fraction < 1:
            raise RecipeError("split.holdout_fraction must be between 0 and 1, e.g. 0.15")
        if self.min_holdout_pairs < 0:
            raise RecipeError("split.min_holdout_pairs must be 0 (off) or more, e.g. 10")


_WINDOW = re.compile(r"\s*(\d+)\s+(day|week|month|year)s?\s*")


@dataclass
class HistoryConfig:
    """The history stage (pipeline/mining/history.py): commit messages -> the definitions at HEAD they touched."""

    # read the git log (outside a git work tree there is none: stats/history.json says so, nothing fails)
    enabled: bool = True
    pairs: bool = True  # commit_definition training pairs from the commits older than the held-out ones
    max_commits: int = 2000  # newest commits read (merges left out); bounds git's time on a long history
    since: str | None = None  # a time window, e.g. "3 years", "6 months" (null: max_commits alone bounds it)
    # a commit touching more definitions than this is a refactor or a sweep: its message says little of each
    max_definitions: int = 3
    min_words: int = 4  # a cleaned message of fewer words ("fix", "wip", "update parser") is dropped
    holdout_share: float = 0.1  # the newest share of kept commits: the history yardstick, never trained on
    min_holdout: int = 30  # ... at least this many where the history allows (never more than half the kept commits)
    # chunk expansion on the BM25 side: up to this many subjects of a chunk's own training commits (newest first)
    # are indexed with its text by the hybrid's BM25, never embedded (the chunk keeps its whole window).
    # 0: off. Held-out and holdout commits never expand a chunk (search.commit_subjects)
    expand: int = 0

    def __post_init__(self) -> None:
        if self.since is not None and not _WINDOW.fullmatch(self.since):
            raise RecipeError(f"history.since must be a window such as '3 years', '6 months', '2 weeks' or '30 days', "
                              f"or null, not {self.since!r}")
        if self.max_commits < 0 or self.max_definitions < 1 or self.min_words < 0 or self.min_holdout < 0 or self.expand < 0:
            raise RecipeError("history.max_commits, history.min_holdout and history.expand must be 0 or more, "
                              "history.max_definitions 1 or more (e.g. 3), history.min_words 0 or more (e.g. 4)")
        if not 0 <= self.holdout_share < 1:
            raise RecipeError("history.holdout_share must be at least 0 and below 1, e.g. 0.1")


LOSSES = ("mnrl", "gist", "soup")  # train.loss
MERGE_GRID = (0.25, 0.5, 0.75, 1.0)  # train.merge_alpha: auto tries these on the dev split


@dataclass
class TrainConfig:
    base_model: str = "packaged:all-MiniLM-L6-v2"  # "packaged:NAME", a local path, or a Hub id
    max_seq_length: int = 128  # tokens; MiniLM costs ~2.3x per step at 256
    batch_size: int = 32  # in-batch negatives: larger is better for MNRL
    cached_loss: bool = False  # the cached variant of train.loss (CachedMultipleNegativesRankingLoss, ...): large batches in small memory
    mini_batch_size: int = 32  # only for cached_loss
    epochs: float = 1.0  # passes over the training pairs (a fraction works); max_steps and time_budget can stop it sooner
    max_steps: int = -1  # -1: epochs decide
    learning_rate: float = 5e-5  # AdamW peak learning rate, after warmup, decaying linearly
    warmup_ratio: float = 0.1  # share of the steps over which the learning rate rises from 0
    time_budget: str | None = None  # "20m", "90s", "1h": cap steps to end inside it
    save_steps: int = 50  # checkpoint every N steps (Colab cut-offs)
    # ... and at least every N minutes of wall time, so a slow or short run (a small repository that never reaches
    # save_steps) still leaves something to resume from. null: steps only
    save_minutes: float | None = 5.0
    save_total_limit: int = 1  # MiniLM checkpoints are ~260 MB each
    eval_steps: int = 50  # the holdout loss (and the dev split, when set) every N steps
    length_aware: bool = True  # group similar lengths into a batch: less padding
    precision: str = "auto"  # "auto": bf16 where supported, else fp16 on GPU, fp32 on CPU
    seed: int = 42  # the trainer's seed and data_seed (batch order, dropout); the data's is split.seed
    # model selection: hold this share of the training files out as a dev split (never the holdout),
    # score it every save_steps, keep the best checkpoint. 0: off, the last step's weights are the model
    dev_fraction: float = 0.0
    # processes that tokenise batches (the data collator) off the training loop: 0 on CPU (they would
    # compete with the step for 2 cores), 2-8 on a GPU, where the step waits on the host otherwise
    dataloader_workers: int = 0
    # "mnrl": MultipleNegativesRankingLoss. "gist": GISTEmbedLoss with a frozen copy of the base model as guide,
    # which drops in-batch negatives the base rates above the positive (in one repository many are true
    # neighbours, e.g. methods of one class). "soup": both, each trained from the base on the same pairs and batch
    # order, the saved weights their mean (a uniform model soup; twice the steps). cached_loss picks the cached variant
    loss: str = "mnrl"
    # the in-batch softmax's temperature. null: the loss's own, MNRL 0.05 (its scale 20), GIST 0.01
    temperature: float | None = None
    # GIST's anchor-anchor and positive-positive terms (the library's contrast_anchors / contrast_positives, on by
    # default there); false keeps MNRL's one direction, anchor -> positives, with GIST's masking
    gist_same_side: bool = True
    # WiSE-FT: the saved weights are alpha * tuned + (1 - alpha) * base, parameter by parameter, after training.
    # 1.0: off. "auto": the best of MERGE_GRID by the dev split's nDCG@10 (needs dev_fraction > 0)
    merge_alpha: typing.Literal["auto"] | float = 1.0

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise RecipeError(f"train.loss must be one of {', '.join(LOSSES)}, not {self.loss!r}")
        if self.merge_alpha != "auto":
            try:  # a number, or one as a string (YAML 1.1 reads 5e-1 so); never true/false
                alpha = float("nan") if isinstance(self.merge_alpha, bool) else float(self.merge_alpha)
            except (TypeError, ValueError):
                alpha = float("nan")
            if not 0 <= alpha <= 1:
                raise RecipeError("train.merge_alpha must be a number from 0 (the base model) to 1 (the tuned model, "
                                  f"no merge), e.g. 0.5, or auto (chosen on the dev split), not {self.merge_alpha!r}")
            self.merge_alpha = alpha
        elif not self.dev_fraction:
            raise RecipeError("train.merge_alpha: auto chooses alpha on the dev split, and there is none: set "
                              "train.dev_fraction (e.g. 0.1), or a number for train.merge_alpha (e.g. 0.5)")
        if self.temperature is not None and not (isinstance(self.temperature, (int, float)) and 0 < self.temperature <= 1):
            raise RecipeError(f"train.temperature must be above 0 and at most 1 (e.g. 0.05), or null for the loss's own, "
                              f"not {self.temperature!r}")
        if self.dataloader_workers < 0:
            raise RecipeError("train.dataloader_workers must be 0 (tokenise in the training process) or more")
        if not 0 <= self.dev_fraction < 0.5:
            raise RecipeError("train.dev_fraction must be at least 0 (off) and below 0.5, e.g. 0.1")
        if self.batch_size < 2:
            raise RecipeError("train.batch_size must be at least 2: in-batch negatives need company")
        if self.precision not in ("auto", "fp32", "fp16", "bf16"):
            raise RecipeError("train.precision must be auto, fp32, fp16 or bf16")
        if self.time_budget is not None:
            parse_duration(self.time_budget)
        if self.save_minutes is not None and self.save_minutes <= 0:
            raise RecipeError("train.save_minutes must be above 0 (e.g. 5), or null to checkpoint by steps only")


@dataclass
class EvaluateConfig:
    sts: str = "sentence-transformers/stsb"  # Hub id, or a local TSV (STS-B format, quoting off)
    sts_fallback: str | None = "packaged:stsb_test"  # used when the Hub is out of reach: pipeline/data/stsb
    train_sample: int | None = None  # None: as many train pairs as holdout pairs, in each draw
    train_draws: int = 4  # disjoint train samples the overfitting gap's train side averages (as many as the pairs allow)
    min_queries: int = 5  # fewer holdout queries than this cannot measure anything
    domain_sts_pairs: int = 500  # holdout chunk pairs graded by structure (same symbol > file > folder) for domain STS
    mteb: bool = True  # the holdout as an mteb retrieval task; its results travel with the model (model/mteb/)
    mteb_public_tasks: list[str] = field(default_factory=list)  # e.g. ["NanoSciFactRetrieval"]
    examples: int = 5  # qualitative holdout queries in the report
    batch_size: int = 64  # texts per encode call while evaluating (memory, not results)
    # a question set (JSONL: {"query", "relevant": [{"path", "symbol" | "contains"}]}), scored over the
    # whole chunk corpus; a path relative to the working directory or to the repository. null: none
    questions: str | None = None
    # dense weight in the hybrid (1 - alpha for BM25), per-query min-max scores; chosen by `make bench-quality`,
    # and search.DEFAULT_ALPHA for a model without repotune.json
    hybrid_alpha: float = 0.8

    def __post_init__(self) -> None:
        if not 0 <= self.hybrid_alpha <= 1:
            raise RecipeError("evaluate.hybrid_alpha must be between 0 (BM25 only) and 1 (dense only), e.g. 0.8")
        if self.train_draws < 1:
            raise RecipeError("evaluate.train_draws must be at least 1 (e.g. 4): the train samples the overfitting gap averages")


@dataclass
class Recipe:
    name: str = "default"
    build: BuildConfig = field(default_factory=BuildConfig)
    collect: CollectConfig = field(default_factory=CollectConfig)
    clean: CleanConfig = field(default_factory=CleanConfig)
    secrets: SecretsConfig = field(default_factory=SecretsConfig)
    chunk: ChunkConfig = field(default_factory=ChunkConfig)
    pairs: PairsConfig = field(default_factory=PairsConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    history: HistoryConfig = field(default_factory=HistoryConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def parse_duration(text: str) -> float:
    """'20m' -> 1200.0 seconds. Units: s, m, h; a bare number is seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(text))
    if not match:
        raise RecipeError(f"cannot read duration {text!r}: write e.g. '90s', '20m' or '1h'")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _check_type(value: Any, hint: Any, key: str, default: Any) -> Any:
    """``value`` if it fits the field's type (an int is a fine float, a number a fine string); else a
    RecipeError that names the key, the type and the default. YAML gives the types, so a typo such as
    ``--set train.max_steps=abc`` is caught here, not deep inside training."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
    if typing.get_origin(hint) is list:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        wanted = "a list of strings, e.g. [a, b]"
    elif hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif hint is float and isinstance(value, str) and re.fullmatch(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*", value):
        return float(value)  # YAML 1.1 reads `5e-5` (no dot) as a string
    elif hint is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # `time_budget: 90`, `name: 2024`
    elif hint not in _TYPE_NAMES or (isinstance(value, hint) and (hint is bool or not isinstance(value, bool))):
        return value  # fits (or a type this check does not know: left to the dataclass)
    else:
        wanted = _TYPE_NAMES[hint]
    raise RecipeError(f"{key} must be {wanted}, not {value!r} (the default is {default!r})")


def _build(cls: type, data: dict, where: str) -> Any:
    if not isinstance(data, dict):
        raise RecipeError(f"{where.rstrip('.') or 'recipe'} must be a mapping of keys to values, got {data!r}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise RecipeError(
            f"unknown recipe key(s) {', '.join(where + k for k in unknown)}; "
            f"valid keys under {where.rstrip('.') or 'the top level'}: {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, f"{where}{key}.")
        else:
            f = fields[key]
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            kwargs[key] = _check_type(value, hint, where + key, default)
    return cls(**kwargs)


def _set(data: dict, dotted: str, raw: str) -> None:
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise RecipeError(f"--set {dotted}: {key} is not a section")
    node[keys[-1]] = yaml.safe_load(raw)


def apply_overrides(data: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """Apply ``section.key=value`` strings to a recipe mapping (values parsed as YAML)."""
    for item in overrides:
        if "=" not in item:
            raise RecipeError(f"--set {item!r}: write key=value, e.g. --set train.max_steps=2")
        key, raw = item.split("=", 1)
        _set(data, key.strip(), raw)
    return data


def load_recipe(recipe: str | Path = "default", overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Load a shipped recipe by name (``default``, ``smoke``, ``colab``) or a YAML path, then apply
    ``key=value`` overrides."""
    path = Path(recipe)
    if not path.suffix:
        path = RECIPES_DIR / f"{recipe}.yaml"
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in RECIPES_DIR.glob("*.yaml")))
        raise RecipeError(f"recipe {recipe!r} not found: give a YAML path or one of {shipped}")
    data = apply_overrides(yaml.safe_load(path.read_text()) or {}, overrides)
    try:
        return _build(Recipe, data, "")
    except TypeError as err:  # a value of the wrong shape reached a dataclass
        raise RecipeError(f"recipe {path}: {err}") from err


def recipe_from_dict(data: dict, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    return _build(Recipe, apply_overrides(data, overrides), "")
