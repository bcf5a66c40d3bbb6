# The two commands of the README. Both set everything up first: a venv in .venv holding exactly
# the tested versions of constraints.txt (pyproject.toml's ranges are what `pip install .` accepts
# next to a user's own torch, Ray and Optuna).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
PIP := $(BIN)/pip install -q -c constraints.txt

.PHONY: setup demo test test-e2e test-realdata faults cluster-test postgres-test bench lint viz check-install clean

# The demo needs the package alone; the tests add their checkers (pytest, ruff, mypy, and the
# metrics' independent implementations), so `make demo` on a fresh clone installs less.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -e .
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(PIP) -e '.[test]'
	touch $(TEST_STAMP)

setup: $(TEST_STAMP)

# The viewers of a running search (tensorboard, optuna-dashboard) in .venv.
viz: $(STAMP)
	$(PIP) -e '.[viz]'

# The main job: search -> review -> export -> retrain -> sample grid (see README).
demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

# Runs anywhere: the MNIST it needs ships in the package; tests that need other real files
# (marked realdata) skip unless $$GANSEARCH_DATA names them. Two pytest-xdist workers: the
# modules that start a Ray take turns on one (tests/conftest.py), the rest share the other.
test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not faults and not cluster and not e2e"

# Whole user workflows end to end (minutes): the README's example walk (search -> review ->
# retrain -> explore on your own GAN and images), a search's trials on both nodes of a real
# two-node cluster, a module only on the driver training there, a search logged to MLflow and
# resumed, a search inside a Ray job and beside a stale session file, an interrupted search
# resumed, PBT's every report, four trials on logical GPUs, a quiet search watched. .ci/run runs it.
test-e2e: $(TEST_STAMP)
	$(BIN)/python -m pytest -q -m e2e

# The tests on real files beyond the shipped MNIST (Fashion-MNIST): $$GANSEARCH_DATA must name a
# folder holding MNIST/raw and FashionMNIST/raw (.ci/run points it at ../shared/data).
test-realdata: $(TEST_STAMP)
	@test -n "$$GANSEARCH_DATA" || { echo "make test-realdata: set GANSEARCH_DATA to a folder holding MNIST/raw and FashionMNIST/raw" >&2; exit 2; }
	$(BIN)/python -m pytest -q -m realdata

# Faults for real (tests/test_faults.py): a killed search driver and its Ray, a killed trial
# worker, concurrent cache builders. A few minutes: a private Ray per search.
faults: $(TEST_STAMP)
	$(BIN)/python -m pytest -q -m faults tests/test_faults.py

# The cluster workflow on one machine (tests/test_autoscaler.py, minutes): cluster.yaml's node
# types under Ray's own autoscaler (fake_multinode), a search sent with `ray job submit`, GPU
# workers added and released. `ray job submit` needs the dashboard, so ray[default] goes into a
# venv of its own on top of .venv (a .pth file), leaving .venv as every other target knows it.
CLUSTER_VENV := $(VENV)/cluster
PURELIB := import sysconfig; print(sysconfig.get_paths()["purelib"])
$(CLUSTER_VENV)/.installed: $(TEST_STAMP)
	test -x $(CLUSTER_VENV)/bin/python || $(BIN)/python -m venv $(CLUSTER_VENV)
	$(BIN)/python -c '$(PURELIB)' > "$$($(CLUSTER_VENV)/bin/python -c '$(PURELIB)')/gansearch-main-venv.pth"
	$(CLUSTER_VENV)/bin/pip install -q -c constraints.txt "ray[default]"
	touch $@

cluster-test: $(CLUSTER_VENV)/.installed
	$(CLUSTER_VENV)/bin/python -m pytest -q -m cluster tests/test_autoscaler.py

# A study database a team shares (tests/test_postgres.py): a real PostgreSQL server, which
# `.ci/with-postgres make postgres-test` starts (and stops); optuna-dashboard from the viz extra.
postgres-test: $(TEST_STAMP)
	$(PIP) -e '.[test,viz,postgres]'
	$(BIN)/python -m pytest -q -m postgres tests/test_postgres.py

# `pip install .` into an environment with another compatible torch (2.13.0) keeps that torch;
# minutes (a second torch), so not part of .ci/run.
check-install:
	bash scripts/check_install_beside_torch.sh

bench: $(STAMP)
	$(BIN)/python -m bench.run

lint: $(TEST_STAMP)
	$(BIN)/ruff check gan_core search tests bench
	$(BIN)/mypy  # gan_core and search, as [tool.mypy] in pyproject.toml says

clean:
	rm -rf runs out .pytest_cache
