# Every target creates .venv (Python 3.11+) and installs what it needs on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# every extra of pyproject.toml (tests/test_dependencies.py checks this list against it): the suite covers them all
EXTRAS := bench,serve,webapp,simulate,experiments,ec2,ssh,browser,test,docs

.PHONY: experiment experiment-full test-cases-testbed test-cases-testbed-core demo test typecheck bench docs install clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	touch $(STAMP)

install: $(STAMP)

## experiment: the main job, the sweep notebook on the embedded default (results/<run>/ and results/REPORT.md); about 10 minutes on 2 cores (estimate in experiments/params/default.yaml)
experiment: $(STAMP)
	SCALE_SEEDS='[0]' bash scripts/sweep.sh experiments/params/default.yaml

## experiment-full: the same on the full grid, every configuration at four rates (experiments/params/full.yaml, about 25 minutes on 2 cores: its scale grid runs three seeds)
experiment-full: $(STAMP)
	bash scripts/sweep.sh experiments/params/full.yaml

## test-cases-testbed-core: the design report's test cases 1-4 on the testbed's scaled machines (root; ~80 min on a quiet machine), the simulator out of sample, REPORTs
test-cases-testbed-core: $(STAMP)
	bash scripts/test-cases-testbed.sh core

## test-cases-testbed: the full grids (every strategy at 2, 3, 5 machines; heterogeneous machines; refit), ~5 h
test-cases-testbed: $(STAMP)
	bash scripts/test-cases-testbed.sh full

## demo: run N requests centralized and distributed on a LocalCluster; print the comparison
demo: $(STAMP)
	$(BIN)/stockdag demo --requests 16 --workers 2

## test: ruff (lint and import order), mypy (typecheck), the docs (warnings are errors), the test suite on two pytest-xdist workers, whole files each, longest first (tests/conftest.py; benchmarks run once each with timing disabled), then the once-flaky tests under two CPU hogs; installs redis-server, openssh-server and chromium if missing
test: $(STAMP)
	$(BIN)/ruff check .
	$(MAKE) --no-print-directory typecheck
	$(MAKE) --no-print-directory docs
	sh scripts/ensure-redis.sh
	sh scripts/ensure-sshd.sh
	sh scripts/ensure-chromium.sh
	$(BIN)/python -m pytest -n 2 --dist loadfile --durations=25
	PYTHON=$(BIN)/python sh scripts/under-load.sh

## docs: the documentation site, offline, into docs/_build/html (every cross-reference must resolve)
docs: $(STAMP)
	$(BIN)/python -m sphinx -E -W --keep-going -q -b html docs docs/_build/html

## typecheck: mypy as pyproject.toml's [tool.mypy] says: strict on stockdag/placement and stockdag/pipeline
typecheck: $(STAMP)
	$(BIN)/python -m mypy

## bench: the pytest-benchmark suite, timed
bench: $(STAMP)
	$(BIN)/python -m pytest tests/benchmarks --benchmark-enable --benchmark-columns=min,median,mean,stddev,rounds

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
