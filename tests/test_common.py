"""pipeline/common.py: what several layers share."""

from __future__ import annotations

import torch

from pipeline.common import (
    embed_precision,
    embed_text,
    embedding_precision,
    file_of,
    hub_offline,
    identifier_words,
    is_rank0,
    row_text,
    squash,
    weights_fingerprint,
)


def test_embed_text_puts_path_and_symbol_on_a_header_line_only_with_context():
    assert embed_text("def f(): ...", "pkg/a.py", "Cls.f") == "pkg/a.py Cls.f\ndef f(): ..."
    assert embed_text("# Intro", "docs/a.md", "") == "docs/a.md\n# Intro"
    assert embed_text("x", "a.py", "f", context=False) == "x"
    assert row_text({"text": "x", "path": "a.py", "symbol": None}, True) == "a.py\nx"


def test_words_files_and_sameness():
    assert identifier_words("SecretScanner.redact_all") == ["secret", "scanner", "redact", "all"]
    assert identifier_words("HTTPServerError2") == ["http", "server", "error", "2"]
    assert file_of("nb.ipynb#markdown") == file_of("nb.ipynb#python") == "nb.ipynb"
    assert squash("  Fix the\tParser\n") == squash("fix the parser") == "fix the parser"


def test_offline_reads_the_hubs_true_values(monkeypatch):
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    assert not hub_offline()
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    assert not hub_offline() and hub_offline("HF_DATASETS_OFFLINE")
    for value, offline in (("1", True), ("true", True), ("YES", True), ("0", False), ("", False)):
        monkeypatch.setenv("HF_HUB_OFFLINE", value)
        assert hub_offline() is offline, value


def test_rank0_is_every_single_process_and_rank_0_under_torchrun(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    assert is_rank0()
    monkeypatch.setenv("RANK", "1")
    assert not is_rank0()
    monkeypatch.setenv("RANK", "0")
    assert is_rank0()


def test_the_weights_fingerprint_follows_the_weights():
    model = torch.nn.Linear(2, 2)
    before = weights_fingerprint(model)
    assert weights_fingerprint(model) == before and len(before) == 12
    with torch.no_grad():
        model.weight[0, 0] += 1
    assert weights_fingerprint(model) != before


def test_embedding_precision_is_bf16_only_where_the_device_computes_it_natively(monkeypatch):
    monkeypatch.delenv("REPOTUNE_EMBED_PRECISION", raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert embed_precision("cpu") == "fp32" and embed_precision("mps") == "fp32"
    model = torch.nn.Linear(4, 4)
    model.device = torch.device("cpu")
    with embedding_precision(model):
        assert model(torch.ones(1, 4)).dtype == torch.float32
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert embed_precision("cpu") == "bf16"
    with embedding_precision(model):
        assert model(torch.ones(1, 4)).dtype == torch.bfloat16  # autocast: the weights stay fp32
    assert model.weight.dtype == torch.float32
    monkeypatch.setenv("REPOTUNE_EMBED_PRECISION", "FP32")  # the override, whatever the hardware
    assert embed_precision("cpu") == "fp32"
    with embedding_precision(model):
        assert model(torch.ones(1, 4)).dtype == torch.float32
    monkeypatch.setenv("REPOTUNE_EMBED_PRECISION", "bf16")
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert embed_precision("cpu") == "bf16"
