# The two commands of the README. Both set everything up first (a venv in .venv with the pins).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test faults bench lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

# The main job: search -> review -> export -> retrain -> sample grid (see README).
demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not faults"

# Faults for real (tests/test_faults.py): a killed search driver and its Ray, a killed trial
# worker, concurrent cache builders. A few minutes: a private Ray per search.
faults: $(STAMP)
	$(BIN)/python -m pytest -q -m faults tests/test_faults.py

bench: $(STAMP)
	$(BIN)/python -m bench.run

lint: $(STAMP)
	$(BIN)/ruff check gan_core search tests bench
	$(BIN)/mypy  # gan_core and search, as [tool.mypy] in pyproject.toml says

clean:
	rm -rf runs out .pytest_cache
