# TraderTape — `make run` serves the embedded default; `make test` runs every check CI runs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: run test lint typecheck layers unit bench clean

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

test: $(VENV)/.installed-dev lint typecheck layers
	$(BIN)/python -m pytest -q tests

bench: $(VENV)/.installed-dev
	@echo "run the scripts under bench/ by hand, e.g. $(BIN)/python bench/commands.py"

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache *.egg-info
