# The two commands: `make run` (a local cluster in the foreground) and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat setup.cfg pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=
ARGS ?=

SEEDS ?= 1000
ROUNDS ?= 10
SEED ?= 1
# Sets and dicts of strings iterate in hash order: a fixed hash seed makes a simulation seed
# replay identically across processes (pytest-xdist workers, `make sim`, a replay by hand).
export PYTHONHASHSEED := 0

.PHONY: run test test-fast lint bench sim chaos system-deps clean venv

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	@bash scripts/install-system-deps.sh python
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $@

run: $(STAMP)
	$(VENV)/bin/mesos-local $(ARGS)

system-deps:
	@bash scripts/install-system-deps.sh all

# Lint and types first: ruff (pyflakes, pycodestyle, isort, bugbear, pyupgrade) and mypy (strict
# on the pure cores), both configured in pyproject.toml.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: $(STAMP) lint system-deps
	$(PY) -m pytest -n 2 -q $(PYTEST_ARGS)

# Unit tests only: quick feedback while editing a pure core.
test-fast: $(STAMP)
	$(PY) -m pytest -n 2 -q tests/unit $(PYTEST_ARGS)

# A long sweep of the deterministic cluster simulation (CI runs a bounded one in `make test`).
sim: $(STAMP)
	$(PY) -m tests.sim.sweep --seeds $(SEEDS)

# Chaos rounds on a multi-host cluster of network namespaces (root): seeded faults while a
# client rolls and scales apps; a failing round prints the command that replays it.
chaos: $(STAMP) system-deps
	$(PY) -m tests.hosts.chaos --rounds $(ROUNDS) --seed $(SEED) --log chaos-$(SEED).jsonl $(ARGS)

bench: $(STAMP)
	$(PY) -m benchmarks.run_all

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis .mypy_cache .ruff_cache
