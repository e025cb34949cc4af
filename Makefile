# Two commands on a fresh machine: `make run` (the app) and `make test` (the whole suite).
# Each first makes .venv with Python 3.11 and installs the package with its dev tools, again
# whenever pyproject.toml changes. Without make (e.g. Windows), run the commands in README.md.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Newer than pyproject.toml: the install is current.
STAMP := $(VENV)/.installed
# Extra pytest arguments, e.g. make test ARGS="-k federation -x"
ARGS ?=

.PHONY: help run test fast lint install

help:
	@echo "make run    start the desktop app"
	@echo "make test   the whole test suite, one worker per core (what CI runs)"
	@echo "make fast   the fast lane: pytest -m \"not slow\" (under a minute)"
	@echo "make lint   ruff check and ruff format --check"
	@echo "(each makes .venv and installs -e .[dev] first when needed)"

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/pumpfl-gui

# One worker per core (pytest-xdist), a test file per worker: its module fixtures are made once.
test: $(STAMP)
	$(BIN)/python -m pytest -n auto --dist loadfile $(ARGS)

fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check pumpfl_gui tests
	$(BIN)/ruff format --check pumpfl_gui tests
