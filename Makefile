# Quick start: `make run` (service on the embedded store with the demo KB) and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-pg check lint fmt typecheck migrate clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-installs only when pyproject.toml changes.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	AI_CS_DEMO_KB=$${AI_CS_DEMO_KB:-true} $(BIN)/ai-customer-service serve

test: install
	$(BIN)/python -m pytest -q

# The same suite against PostgreSQL (AI_CS_TEST_POSTGRES_DSN, default: local trust-auth server).
test-pg: install
	AI_CS_TEST_DATABASE=postgres $(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

fmt: install
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

typecheck: install
	$(BIN)/mypy

check: lint typecheck test

migrate: install
	$(BIN)/ai-customer-service migrate

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
