# One venv, created from pyproject.toml; every target installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install test lint format unit dev demo bench clean
.PHONY: infra infra-tools image-env container-tools containers
.PHONY: browser-tools pdf-tools

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Whole suite: lint and type check, then unit, emulator, integration, end-to-end and infrastructure tests.
test: lint infra-tools browser-tools pdf-tools image-env container-tools
	$(PY) -m pytest

## ruff (lint and formatting) over all Python, mypy over services/ and devtools/ (strict for the Stripe code paths), the
## import contracts (the dependency rule; see pyproject.toml). `make format` rewrites what the check refuses.
lint: install
	$(PY) -m ruff check services devtools deploy tests
	$(PY) -m ruff format --check services devtools deploy tests
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

format: install
	$(PY) -m ruff format services devtools deploy tests
	$(PY) -m ruff check --fix services devtools deploy tests

## Fast tests only (no network, no processes).
unit: install
	$(PY) -m pytest tests/unit

## The whole system on 127.0.0.1 (moto, Stripe emulator, services) until Ctrl-C; see .local/stack.json.
dev: install pdf-tools
	$(PY) -m local_stack

## The monthly billing end to end on the local stack: saves a card, bills last month, prints the paid invoice.
demo: install pdf-tools
	$(PY) -m local_stack.demo

## Benchmarks (not part of make test): tests/bench/bench_*.py, figures printed at the end.
bench: install
	$(PY) -m pytest tests/bench -o python_files='bench_*.py' -s

## Linters the infrastructure tests call, each pinned, in venvs of their own (checkov pins an old boto3).
TOOLS_VENV := .venv-tools
CHECKOV_VENV := .venv-checkov

$(TOOLS_VENV)/.installed: tests/infra/requirements-tools.txt
	test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet -r $<
	touch $@

$(CHECKOV_VENV)/.installed: tests/infra/requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r $<
	touch $@

infra-tools: $(TOOLS_VENV)/.installed $(CHECKOV_VENV)/.installed

## What the images hold: a venv from deploy/requirements.lock alone (--no-deps, as the Dockerfile installs it);
## tests/infra/test_image_entry_points.py imports every entry point of every image in it.
IMAGE_VENV := .venv-image

$(IMAGE_VENV)/.installed: deploy/requirements.lock
	rm -rf $(IMAGE_VENV) && $(PYTHON) -m venv $(IMAGE_VENV)
	$(IMAGE_VENV)/bin/python -m pip install --quiet --no-deps --only-binary=:all: -r $<
	touch $@

image-env: $(IMAGE_VENV)/.installed

## The container test (tests/containers, part of make test): podman-compose in a venv of its own; Podman itself
## and the stand-in base images are made ready by the test's set-up (tests/containers/engine.py).
CONTAINERS_VENV := .venv-containers

$(CONTAINERS_VENV)/.installed: tests/containers/requirements.txt
	test -x $(CONTAINERS_VENV)/bin/python || $(PYTHON) -m venv $(CONTAINERS_VENV)
	$(CONTAINERS_VENV)/bin/python -m pip install --quiet -r $<
	touch $@

container-tools: $(CONTAINERS_VENV)/.installed

## Only the container test: build the images, run docker-compose.yml, bill a month on the containers.
containers: install container-tools pdf-tools
	$(PY) -m pytest tests/containers

## Offline infrastructure checks: terraform fmt/validate/apply (against moto), checkov, hadolint, compose config.
infra: install infra-tools
	$(PY) -m pytest tests/infra

## Debian's Chromium for the browser tests (tests/browser); Playwright drives it, nothing downloads a browser.
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y chromium

browser-tools: $(CHROMIUM)

## Debian's libraries weasyprint loads for the ZUGFeRD PDF (Pango, HarfBuzz's font subsetter) and the font the
## PDF embeds; installed only when one is not ("ii" in dpkg's database: the same names on x86_64 and aarch64).
PDF_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core

pdf-tools:
	@test "$$(dpkg-query -W -f='$${db:Status-Abbrev}\n' $(PDF_PACKAGES) 2>/dev/null | grep -c '^ii')" = "$(words $(PDF_PACKAGES))" \
		|| { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(PDF_PACKAGES); }

clean:
	rm -rf $(VENV) .local test-artifacts $(TOOLS_VENV) $(CHECKOV_VENV) $(IMAGE_VENV) $(CONTAINERS_VENV) .cache/containers
