# The two commands of the README: `make run` starts everything, `make test` tests it.
# Each creates .venv when it is missing and installs what it needs.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: help test lint bench-lock clean

help:
	@echo "make run | test | lint | bench-lock | clean"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.dev-installed: setup.cfg pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[dev]' --config-settings editable_mode=compat
	touch $@

test: $(VENV)/.dev-installed
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev-installed
	$(PY) -m flake8 fencing orders invoices servicekit devstack benchmarks tests
	$(PY) -m mypy

bench-lock: $(VENV)/.dev-installed
	$(PY) -m benchmarks.lock --json bench-results/lock.json

clean:
	rm -rf $(VENV) .data bench-results *.egg-info
