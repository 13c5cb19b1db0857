# repotune: `make train` tunes a model on this repository, `make test` runs the tests.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch that lies on disk here; an unpinned torch pulls a multi-GB CUDA build.
TORCH ?= torch==2.13.0
REPO ?= .
RUN ?= runs/latest
# the question set the run is judged by: this repository's own, when tuning on this repository
QUESTIONS ?= $(if $(filter .,$(REPO)),quality/questions.jsonl,)
# Nothing loads from the Hugging Face Hub at run time here: say so, so nothing waits on it.
OFFLINE := HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false

.PHONY: help install train test test-colab gate docs lint bench bench-build bench-secrets bench-codeheavy bench-train bench-quality clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(BIN)/repotune: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt "$(TORCH)"
	@# setuptools explains editable installs in a boxed warning on every install: repotune's own lines only
	PYTHONWARNINGS=ignore::UserWarning $(BIN)/pip install -q -c constraints.txt -e ".[test,docs,lint]"
	touch $@

install: $(BIN)/repotune ## create .venv and install repotune with its test, docs and lint extras (~2 min)

train: install ## tune a model on this repository (default recipe, ~9 min on 2 idle cores after the install) -> runs/latest
	$(OFFLINE) $(BIN)/repotune run $(REPO) --out $(RUN) --fresh $(if $(QUESTIONS),--set evaluate.questions=$(QUESTIONS))

test: install ## run the unit tests (tiny local model, a few minutes)
	$(OFFLINE) $(BIN)/python -m pytest

# Colab's versions (notebooks/colab/constraints.txt, from its published freeze) in .venv-colab: python3.11 and the CPU
# torch 2.13.0 (a 3.11 build, on disk) stand in for Colab's 3.13 and CUDA torch 2.11, which cannot be installed here
test-colab: ## on Colab's versions, in .venv-colab: install, versions beside Colab's, smoke run + gate, all unit tests
	PYTHON=python3.11 bash .ci/colab-venv

gate: install ## run the governance gate on $(RUN) and write its governance.json
	$(OFFLINE) $(BIN)/repotune gate $(RUN)

docs: install ## build the documentation site (docs/, mkdocs build --strict) into site/
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

lint: install ## ruff check (pyproject's rules) and the pre-commit hooks on every file
	$(BIN)/ruff check .
	$(BIN)/pre-commit run --all-files --show-diff-on-failure

bench: bench-build bench-secrets bench-train bench-quality ## all benchmarks -> bench/results/

bench-build: install ## build throughput and peak memory on a large real repository; pairs and MB/s per language
	$(OFFLINE) $(BIN)/python -m bench.bench_build
	$(OFFLINE) $(BIN)/python -m bench.bench_build --languages

bench-secrets: install ## planted secrets leaked, false findings on 14 clean repositories (cloned on first use), scan cost vs detect-secrets (~15 min)
	$(OFFLINE) $(BIN)/python -m bench.bench_secrets

bench-codeheavy: install ## the default recipe and the gate on 3 code-heavy repositories (cloned on first use, ~10 min each)
	$(OFFLINE) $(BIN)/python -m bench.bench_codeheavy

bench-train: install ## pairs/s: repotune vs a plain sentence-transformers script
	$(OFFLINE) $(BIN)/python -m bench.bench_train

# QUALITY_ARGS: e.g. --sources llm huh --variants default gist (bench/bench_quality.py's --help)
QUALITY_ARGS ?=

bench-quality: install ## six repositories with their history (two from 2023): tuning alone, the default search vs plain base, history, STS-B (~1.5 h)
	$(OFFLINE) $(BIN)/python -m bench.bench_quality $(QUALITY_ARGS)

clean: ## remove runs/ and caches (keeps .venv)
	rm -rf runs site .pytest_cache .hypothesis
