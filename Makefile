# The README's two commands: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# `make demo` installs the package with the web viewer's extra (the demo ends with the command that
# opens the viewer on its data); `make test` installs
# it with every extra and the development tools (pyproject.toml's dependency group `dev`). Each has its
# own stamp, redone when pyproject.toml changes.
DEMO_STAMP := $(VENV)/.installed-demo
DEV_STAMP  := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck unit stress bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit("llmaudit needs Python >= 3.11, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)

$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[ui]'
	@touch $(DEMO_STAMP)

# pip installs dependency groups (--group) from 25.1 on; the venv's own pip may be older
$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade 'pip>=25.1'
	$(BIN)/python -m pip install --quiet -e '.[all]' --group dev
	@touch $(DEV_STAMP) $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/llmaudit demo

test: lint typecheck unit stress

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests benchmarks examples integrations
	$(BIN)/ruff format --check src tests benchmarks examples integrations

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

unit: $(DEV_STAMP)
	$(BIN)/pytest

# the long-running reliability proofs (RELIABILITY.md): load, kill -9, restarts, full disk, fuzzing
stress: $(DEV_STAMP)
	$(BIN)/pytest -m stress tests/stress

bench: $(DEV_STAMP)
	$(BIN)/python benchmarks/bench_writer.py
	$(BIN)/python benchmarks/bench_transport.py
	$(BIN)/python benchmarks/bench_capture_hold.py
	$(BIN)/python benchmarks/bench_decorator.py
	$(BIN)/python benchmarks/bench_redact_chain.py
	$(BIN)/python benchmarks/bench_read.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
