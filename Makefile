# TraderTape — `make run` serves the embedded default; `make test` runs every check CI runs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: run test lint typecheck layers unit bench clean chromium

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) install -e ".[dev]"
	@touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/tradertape db init
	$(BIN)/tradertape data ensure
	$(BIN)/tradertape serve

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy domain commands projections api streams backtest infra

layers: $(VENV)/.installed-dev
	$(BIN)/lint-imports

# The browser tests drive Debian's Chromium; install it when missing, or stop naming it (never a silent skip).
chromium:
	@test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium) || \
	  { echo "make test needs Debian's 'chromium' package (/usr/bin/chromium): apt-get install -y chromium" >&2; exit 1; }

test: $(VENV)/.installed-dev lint typecheck layers chromium
	$(BIN)/python -m pytest -q tests

bench: $(VENV)/.installed-dev
	@echo "run the scripts under bench/ by hand, e.g. $(BIN)/python bench/commands.py"

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache *.egg-info
