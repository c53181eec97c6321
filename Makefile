# Everything a new machine needs comes from here: `make run` and `make test` create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8080
# `make run FRESH=1` deletes the demo's database first (reachout.db, unless REACHOUT_DATABASE_URL says).
FRESH ?=

.PHONY: run test lint typecheck contracts unit clean bench bench-dispatch

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/reachout serve --config demo.yaml --host $(HOST) --port $(PORT) --demo $(if $(filter-out 0 no false,$(FRESH)),--fresh)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

contracts: $(STAMP)
	$(BIN)/lint-imports

unit: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck contracts unit

bench: $(STAMP)
	$(BIN)/python bench/accept.py

bench-dispatch: $(STAMP)
	$(BIN)/python bench/dispatch.py

clean:
	rm -rf $(VENV) reachout.db reachout.db-wal reachout.db-shm
