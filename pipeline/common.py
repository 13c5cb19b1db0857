"""What several layers share, kept below them all (tests/test_architecture.py declares the order): the text a chunk is
embedded as, a path's file, identifier words, the normalised form of a text compared for sameness, the offline and
rank-0 checks, the precision models embed text in, and the fingerprint of a model's weights. Nothing here imports another repotune module."""

from __future__ import annotations

import hashlib
import os
import re

# --- the text a chunk is embedded as ---------------------------------------------------------------


def context_header(path: str, symbol: str = "") -> str:
    """The one-line header a chunk is embedded under when ``chunk.context`` is on: "pipeline/secrets/scanner.py
    SecretScanner.redact" (``embed_text``); the chunker leaves room for it (``chunk.header_reserve()``)."""
    return f"{path} {symbol}".rstrip()


def embed_text(text: str, path: str = "", symbol: str = "", context: bool = True) -> str:
    """``text`` under a one-line header naming where it lives (repo-relative path, then the symbol or
    heading path), when ``context`` is on: "pipeline/secrets/scanner.py SecretScanner.redact\\n<code>"."""
    if not context or not path:
        return text
    return context_header(path, symbol) + "\n" + text


def row_text(row: dict, context: bool) -> str:
    """``embed_text`` of a corpus row (a chunk: text, path, symbol)."""
    return embed_text(row["text"], row.get("path", ""), row.get("symbol", "") or "", context)


def file_of(path: str) -> str:
    """A notebook's cells (nb.ipynb#markdown, nb.ipynb#python) belong to one file."""
    return path.split("#", 1)[0]


# --- words ---------------------------------------------------------------------------------------------

_SPLIT_IDENT = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def identifier_words(name: str) -> list[str]:
    """An identifier as lowercase words: "SecretScanner.redact_all" -> ["secret", "scanner", "redact", "all"]."""
    return [p.lower() for piece in re.split(r"[_.]", name) for p in _SPLIT_IDENT.findall(piece)]


def squash(text: str) -> str:
    """A text as compared for sameness (duplicate pairs, commit messages, questions): lowercase, whitespace collapsed."""
    return " ".join(text.lower().split())


# --- the environment -----------------------------------------------------------------------------------

_TRUE = {"1", "ON", "YES", "TRUE"}  # huggingface_hub's own reading of its boolean variables


def hub_offline(*variables: str) -> bool:
    """Whether the Hugging Face Hub is out of bounds: ``HF_HUB_OFFLINE`` (or any of ``variables``, e.g.
    ``HF_DATASETS_OFFLINE`` for the datasets a task loads) set true."""
    return any(os.environ.get(k, "").upper() in _TRUE for k in ("HF_HUB_OFFLINE", *variables))


def is_rank0() -> bool:
    """Whether this process is the one that writes and reports: always outside torchrun, rank 0 under it."""
    return int(os.environ.get("RANK", "0")) == 0


# --- the precision models embed text in ----------------------------------------------------------------

def embed_precision(device_type: str) -> str:
    """"bf16" where ``device_type`` computes bfloat16 natively (a CUDA GPU that supports it; a CPU with AVX512-BF16 or
    AMX: 1.8x the fp32 rate here, embeddings within cosine 0.9999 of fp32's), else "fp32". Inference only (mining,
    evaluation, search); training has ``train.precision``. ``REPOTUNE_EMBED_PRECISION=fp32`` (or ``bf16``) forces one."""
    import torch

    forced = os.environ.get("REPOTUNE_EMBED_PRECISION", "").lower()
    if forced in ("fp32", "bf16"):
        return forced
    if device_type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device_type == "cpu":  # torch.cpu's checks are private: a torch without them is taken as lacking the feature
        checks = (getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
        return "bf16" if any(check is not None and check() for check in checks) else "fp32"
    return "fp32"


def device_type(model) -> str:
    """"cpu", "cuda", ...: where ``model`` runs ("cpu" for an object without a device, such as a test's stand-in)."""
    return getattr(getattr(model, "device", None), "type", "cpu")


def embedding_precision(model):
    """The context ``model`` embeds text in: bfloat16 autocast where ``embed_precision`` says so, else nothing
    (fp32). Autocast keeps normalisation and softmax in fp32; the weights stay as they are."""
    import contextlib

    import torch

    device = device_type(model)
    return torch.autocast(device, dtype=torch.bfloat16) if embed_precision(device) == "bf16" else contextlib.nullcontext()


def weights_fingerprint(model) -> str:
    """Short hash of a torch module's parameters and buffers: a revision that changes whenever the weights do."""
    import torch

    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(str(flat.dtype).encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:12]
