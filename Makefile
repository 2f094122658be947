# The two commands of the README: `make run` starts everything, `make test` tests it.
# Each creates .venv when it is missing and installs what it needs.

PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
# Compose v2 (the docker CLI plugin) when it is here, else the old docker-compose.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
PROD    := $(COMPOSE) -f docker-compose.production.yml

.PHONY: help run test lint docs bench bench-lock bench-http demo chaos explore-services newman compose-check build run_prod infra_down_prod \
        infra infra_down clean

help:
	@echo "make run              both services (+ Redis and MongoDB unless REDIS_URL/MONGO_URL set)"
	@echo "make test             the test suite (real Redis and MongoDB-wire servers)"
	@echo "make lint             flake8 and mypy"
	@echo "make docs             the documentation site, into site/ (open site/index.html)"
	@echo "make bench            benchmarks (side by side, one run)"
	@echo "make demo             two concurrent updates, told from the services' logs"
	@echo "make explore-services every interleaving of two orders flows, stepped in-process (long)"
	@echo "make chaos            the naive lock and the fenced one under the same faults, and a report"
	@echo "make explore          search the lock's schedules longer (EXPLORE_SECONDS, default 300)"
	@echo "make newman           the Postman collection against running services (KEY=<INVOICES_API_KEY>)"
	@echo "make infra | infra_down            MongoDB and Redis in docker compose"
	@echo "make build | run_prod | infra_down_prod   the whole system in docker compose"
	@echo "make compose-check    validate both compose files (needs docker compose or docker-compose)"

$(PY):
	@echo "creating $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# The library first, editable so edits to fencing/ are picked up: the services
# depend on it as an adopter would (redis-fencing), and pip would otherwise look
# for it on PyPI.
$(VENV)/.fencing-installed: fencing/pyproject.toml | $(PY)
	$(PY) -m pip install -q -e ./fencing
	touch $@

# editable_mode=compat: packages added later are found without reinstalling.
# pip is not quiet here: the first install takes a minute and shows what it fetches.
$(VENV)/.local-installed: setup.cfg pyproject.toml $(VENV)/.fencing-installed | $(PY)
	@echo "installing the project into $(VENV) (the first time takes a minute or so)"
	$(PY) -m pip install --progress-bar on -e '.[local]' --config-settings editable_mode=compat
	touch $@

$(VENV)/.dev-installed: setup.cfg pyproject.toml $(VENV)/.fencing-installed | $(PY)
	@echo "installing the project and its test tools into $(VENV) (the first time takes a minute or two)"
	$(PY) -m pip install --progress-bar on -e '.[dev]' --config-settings editable_mode=compat
	touch $@ $(VENV)/.local-installed

run: $(VENV)/.local-installed
	$(PY) -m devstack $(if $(INSTANCES),--instances $(INSTANCES)) $(ARGS)

# Newman (tests/test_newman.py) comes from the npm registry, when npm is here.
node_modules/.installed: package.json package-lock.json
	@if command -v npm >/dev/null; then \
		echo "installing Newman from the npm registry (npm ci)"; \
		npm ci --no-audit --no-fund --silent && touch $@; \
	else echo "npm not found: tests/test_newman.py will be skipped"; fi

# The Postman collection against the services `make run` started (another terminal).
# KEY: the INVOICES_API_KEY that make run printed; HELD_TOKEN (optional): a token from
# `python -m fencing hold 'invoice:{<heldInvoiceId>}'`, for the fenced write that succeeds.
newman: node_modules/.installed
	@test -x node_modules/.bin/newman || { echo "newman needs npm (Node.js)"; exit 1; }
	node_modules/.bin/newman run docs/distributed-lock.postman_collection.json \
		--environment docs/distributed-lock.postman_environment.json \
		--env-var invoicesApiKey=$(KEY) $(if $(HELD_TOKEN),--env-var heldToken=$(HELD_TOKEN))

test: $(VENV)/.dev-installed node_modules/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

# The site (mkdocs.yml) with its API reference; mermaid comes from npm (package.json), so
# the pages draw their diagrams with no network. --strict: a broken link fails the build.
docs: $(VENV)/.dev-installed node_modules/.installed
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict
	@echo "the site: site/index.html (its search needs it served: python3 -m http.server -d site)"

lint: $(VENV)/.dev-installed
	$(PY) -m flake8 fencing orders invoices servicekit devstack benchmarks examples tests
	$(PY) -m mypy

$(VENV)/.bench-installed: setup.cfg pyproject.toml | $(VENV)/.dev-installed
	$(PY) -m pip install -q -e '.[dev,bench]' --config-settings editable_mode=compat
	touch $@

bench: bench-lock bench-http

bench-http: $(VENV)/.bench-installed
	$(PY) -m benchmarks.http

demo: $(VENV)/.local-installed
	$(PY) -m devstack.demo

chaos: $(VENV)/.local-installed
	$(PY) -m devstack.chaos $(ARGS)

# The full enumeration behind tests/orders/test_interleavings.py (make test runs a part).
explore-services: $(VENV)/.dev-installed
	EXPLORE=all $(PY) -m pytest tests/orders/test_interleavings.py $(PYTEST_ARGS)

bench-lock: $(VENV)/.bench-installed
	$(PY) -m benchmarks.lock --json docs/benchmarks/lock.json --plot docs/benchmarks/lock.png
	$(PY) -m benchmarks.lock_server_cost --json docs/benchmarks/lock-server-cost.json

# The schedule explorer beyond the fixed budget `make test` gives it: fresh seeds, batch after
# batch, for EXPLORE_SECONDS (then the batch under way ends); prints what it tried, and the
# shrunk schedule of any failure (docs/library/schedule-explorer.md).
EXPLORE_SECONDS ?= 300
.PHONY: explore
explore: $(VENV)/.dev-installed
	$(PY) -m tests.fencing.schedules explore --seconds $(EXPLORE_SECONDS)

compose-check:
	@$(COMPOSE) version >/dev/null 2>&1 || { echo "compose-check needs docker compose or" \
		"docker-compose (Debian: apt-get install docker-compose; no engine needed)"; exit 1; }
	$(COMPOSE) -f docker-compose.yml config -q
	INVOICES_API_KEY=compose-check-placeholder $(PROD) config -q
	@echo "docker-compose.yml and docker-compose.production.yml are valid"

build:
	$(PROD) build

run_prod:
	$(PROD) up -d --build

infra_down_prod:
	$(PROD) down

infra:
	$(COMPOSE) up -d

infra_down:
	$(COMPOSE) down

clean:
	rm -rf $(VENV) .data bench-results *.egg-info fencing/*.egg-info fencing/build node_modules site
