# Two commands matter: `make run` and `make test`. Everything else is a step they share.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.setup-stamp
PYTHON ?= python3
# the slowest tests are listed at the end of every run: what to move to bench/ first
PYTEST_ARGS ?= --durations=25

.PHONY: setup run test lint pytest bench screenshots chaos clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

run: setup
	$(VENV)/bin/loyalty-desk

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

pytest: setup
	$(VENV)/bin/python -m runtime.testenv $(VENV)/bin/pytest $(PYTEST_ARGS)

test: lint pytest

# the chaos suite alone (kills, hostile input, floods, scale-out); `make pytest` runs it too
chaos: setup
	$(VENV)/bin/python -m runtime.testenv $(VENV)/bin/pytest tests/chaos $(PYTEST_ARGS)

# Every benchmark prints one JSON object. The defaults fit in about 15 minutes on a
# 2-core machine; the sizes of issue 6:
#   make bench BENCH_ROLLBACK_MEMBERS=1000 BENCH_TABLE_MEMBERS=100000 BENCH_AGENT_EVENTS=10000 BENCH_AGENT_MEMBERS=1000
# and of issue 15: BENCH_LIABILITY_MEMBERS=100000
BENCH_ROLLBACK_MEMBERS ?= 200
BENCH_TABLE_MEMBERS    ?= 10000
BENCH_AGENT_EVENTS     ?= 2000
BENCH_AGENT_MEMBERS    ?= 200
BENCH_EFFECTS          ?= 300
BENCH_LIABILITY_MEMBERS ?= 10000

bench: setup
	$(PY) -m bench.ingest
	$(PY) -m bench.can_flat
	$(PY) -m bench.rollback --members $(BENCH_ROLLBACK_MEMBERS)
	$(PY) -m bench.desktop --table-members $(BENCH_TABLE_MEMBERS)
	$(PY) -m bench.table_sort
	$(PY) -m bench.agent --events $(BENCH_AGENT_EVENTS) --members $(BENCH_AGENT_MEMBERS)
	$(PY) -m bench.audit
	$(PY) -m runtime.testenv $(PY) -m bench.effects --effects $(BENCH_EFFECTS)
	$(PY) -m runtime.testenv $(PY) -m bench.redeem
	$(PY) -m bench.liability --members $(BENCH_LIABILITY_MEMBERS)
	$(PY) -m runtime.testenv $(PY) -m bench.bulk

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

# PNGs of every panel, from the app running offscreen against a real embedded server
screenshots: setup
	$(PY) -m desktop.screenshots --out docs/screenshots
