# LLM Edge. `make run` to try the gateway, `make test` to test it; both set up .venv themselves.
#
# Variables: PORT (make run, default 8080), PYTEST_ARGS (make test, e.g. PYTEST_ARGS="-n 2 -k ledger"),
# BENCH_ARGS (make bench), PYTHON (the interpreter that creates .venv, default python3).

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8080
PYTEST_ARGS ?=
BENCH_ARGS ?=

# Stamps record that a requirements file is installed: pip runs again only when the file is newer.
BASE_STAMP := $(VENV)/.installed-base
DEV_STAMP := $(VENV)/.installed-dev
PIP_INSTALL := $(PY) -m pip install --quiet --disable-pip-version-check --progress-bar off

.PHONY: help run test lint bench clean

help:
	@echo "make run    serve the gateway on 127.0.0.1:$(PORT) with a fake upstream and a demo key"
	@echo "make test   run the test suite (needs Postgres and Redis on 127.0.0.1; PYTEST_ARGS=...)"
	@echo "make lint   ruff and mypy"
	@echo "make bench  load benchmark (bench/run.py; needs wrk)"
	@echo "make clean  remove .venv, var/ (local database, demo key, ledger spool) and caches"

$(PY):
	$(PYTHON) -m venv $(VENV)

$(BASE_STAMP): requirements/base.txt | $(PY)
	$(PIP_INSTALL) -r requirements/base.txt
	touch $@

# dev.txt includes base.txt, so installing it satisfies the base stamp too.
$(DEV_STAMP): requirements/dev.txt requirements/base.txt | $(PY)
	$(PIP_INSTALL) -r requirements/dev.txt
	touch $@ $(BASE_STAMP)

run: $(BASE_STAMP)
	PORT=$(PORT) PYTHON=$(PY) bash docker/dev-run.sh

test: $(DEV_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .

bench: $(DEV_STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .mypy_cache .ruff_cache
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
