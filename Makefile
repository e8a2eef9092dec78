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

# focus-validator (tests/reports) needs Python >= 3.12: its own venv, made with the first such Python found
# (FOCUS_PYTHON=... to choose one); without one, the tests that run it are skipped and say why.
# 3.12 first: focus-validator's numpy (< 2) has no wheels for 3.13. pyenv's shims are skipped unless they run.
FOCUS_PYTHON ?= $(shell for python in $(HOME)/.pyenv/versions/3.12.*/bin/python3 python3.12 \
                    $(HOME)/.pyenv/versions/3.13.*/bin/python3 python3.13; do \
                    "$$python" -c 'import sys; assert sys.version_info >= (3, 12)' 2>/dev/null \
                    && echo "$$python" && break; done)
FOCUS_STAMP := .venv-focus/.installed

$(FOCUS_STAMP): requirements/focus.txt
	$(FOCUS_PYTHON) -m venv .venv-focus
	.venv-focus/bin/python -m pip install --quiet --disable-pip-version-check --progress-bar off -r requirements/focus.txt
	touch $@

test: $(DEV_STAMP) $(if $(FOCUS_PYTHON),$(FOCUS_STAMP))
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .

bench: $(DEV_STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .venv-focus var staticfiles .pytest_cache .mypy_cache .ruff_cache
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
