# Two commands for a newcomer: `make demo` and `make test`. Each sets up .venv on first use
# (uv, from uv.lock; uv itself is installed into .tools/ if it is not on PATH).
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV_VERSION := 0.13.8
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/uv/bin/uv)
VENV := .venv
PY := $(VENV)/bin/python
export OMP_NUM_THREADS ?= 1
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)
POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/patron
PYTEST_ARGS ?=

.PHONY: help demo test test-sqlite test-postgres lint bench setup launcher clean

help:
	@echo "make demo   build the demo merchant (SQLite + Parquet under PATRON_HOME, default ./.patron) and serve it"
	@echo "make test   run the whole test suite on SQLite and on PostgreSQL ($(POSTGRES_URL))"
	@echo "make lint   ruff, mypy and the missing-migrations check"
	@echo "make bench  import throughput benchmark (see bench/README.md)"

$(CURDIR)/.tools/uv/bin/uv:
	@python3 -m pip --version >/dev/null 2>&1 || { echo "need python3 with pip to install uv"; exit 1; }
	python3 -m pip install --quiet --disable-pip-version-check --target .tools/uv uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	@PY312=$$(scripts/find-python) || exit 1; \
	  $(UV) sync --frozen --compile-bytecode --python "$$PY312"
	@touch $@

setup: $(VENV)/.synced launcher

# A `patron` command on PATH that runs the checkout you are in (scripts/patron-launcher).
LAUNCHER_DIR ?= $(shell [ -w /usr/local/bin ] && echo /usr/local/bin || echo $(HOME)/.local/bin)
launcher:
	@mkdir -p $(LAUNCHER_DIR) && install -m 0755 scripts/patron-launcher $(LAUNCHER_DIR)/patron

demo: setup
	$(VENV)/bin/patron demo $(DEMO_ARGS)

test: test-sqlite test-postgres

test-sqlite: setup
	env -u DATABASE_URL $(PY) -m pytest $(PYTEST_ARGS)

test-postgres: setup
	@pg_isready -q -h 127.0.0.1 -p 5432 || { echo "PostgreSQL is not answering on 127.0.0.1:5432: start it (see docs/operations.md) or run 'make test-sqlite'"; exit 1; }
	DATABASE_URL=$(POSTGRES_URL) $(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy
	PATRON_HOME=$$(mktemp -d) $(PY) -m django makemigrations --check --dry-run --settings=patron.settings

bench: setup
	$(PY) bench/import_throughput.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache
