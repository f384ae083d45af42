# One venv, created from pyproject.toml; every target installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test unit dev demo bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Whole suite: unit, emulator, integration and end-to-end tests.
test: install
	$(PY) -m pytest

## Fast tests only (no network, no processes).
unit: install
	$(PY) -m pytest tests/unit

## The whole system on 127.0.0.1 (moto, Stripe emulator, services) until Ctrl-C; see .local/stack.json.
dev: install
	$(PY) -m local_stack

## Benchmarks (not part of make test): tests/bench/bench_*.py, figures printed at the end.
bench: install
	$(PY) -m pytest tests/bench -o python_files='bench_*.py' -s

clean:
	rm -rf $(VENV) .local test-artifacts
