# The README's two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck unit stress bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("llmaudit needs Python >= 3.10, found " + sys.version.split()[0]) if sys.version_info < (3, 10) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/llmaudit demo

test: lint typecheck unit stress

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples integrations
	$(BIN)/ruff format --check src tests benchmarks examples integrations

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

# the long-running reliability proofs (RELIABILITY.md): load, kill -9, restarts, full disk, fuzzing
stress: $(STAMP)
	$(BIN)/pytest -m stress tests/stress

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_writer.py
	$(BIN)/python benchmarks/bench_transport.py
	$(BIN)/python benchmarks/bench_capture_hold.py
	$(BIN)/python benchmarks/bench_decorator.py
	$(BIN)/python benchmarks/bench_redact_chain.py
	$(BIN)/python benchmarks/bench_read.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
