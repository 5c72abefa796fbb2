# The two commands of the README's quick start. Both create .venv with the CPU build of torch
# first (a plain `torch` requirement would pull a multi-GB CUDA build), then the project.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON)"; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# Where the study's protocol files are mirrored beside the project (offline machines), both
# commands read them from there; elsewhere they come from the assets cache (`harness assets
# fetch`), and without either the tests that need them skip, naming that command.
MIRROR := $(wildcard ../shared/upstream)
WITH_MIRROR := $(if $(MIRROR),HARNESS_ASSETS_MIRROR=$(abspath $(MIRROR)) )

run: $(STAMP)
	$(WITH_MIRROR)$(BIN)/harness run

test: $(STAMP)
	$(WITH_MIRROR)$(BIN)/python -m pytest -q -p no:cacheprovider --durations=10

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
