# Two commands on a fresh machine:  `make demo` (main job) and `make test` (tests).
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test bench clean

$(STAMP): pyproject.toml backends/lava/pyproject.toml requirements-lava.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]' -e backends/lava
	$(BIN)/pip install -q --no-deps --ignore-requires-python --require-hashes -r requirements-lava.txt
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

test: $(STAMP)
	$(BIN)/lint-imports --no-cache  # the import layering (contracts in pyproject.toml)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/build_speed.py
	$(BIN)/python bench/sim_speed.py

clean:
	rm -rf $(VENV) build-demo
