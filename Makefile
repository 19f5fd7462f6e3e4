# The two set-up commands of the README: `make demo` and `make test`. Each does all
# set-up on a fresh machine: the venv, the Python packages, the cluster binaries.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit binaries venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Builds etcd and Kubernetes from Go modules the first time (cached outside the clone).
binaries: venv
	$(BIN)/weft cluster build

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: venv
	$(BIN)/mypy

test: binaries lint typecheck
	$(BIN)/pytest

demo: binaries
	$(BIN)/weft demo

clean:
	-$(BIN)/weft cluster down
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
