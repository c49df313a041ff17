# leadflow — two commands: `make run` and `make test`. Both install into .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PACKAGES := shared services/lead-intake services/scoring services/routing services/deals \
            services/webhooks services/console launcher
STAMP := $(VENV)/.installed
PYPROJECTS := $(foreach p,$(PACKAGES),$(p)/pyproject.toml)

.PHONY: install run test lint typecheck unit integration browser bench soak clean audit

$(STAMP): constraints.txt requirements-dev.txt $(PYPROJECTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
	    -c constraints.txt -r requirements-dev.txt \
	    $(foreach p,$(PACKAGES),-e $(p))
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/leadflow up

test: install lint typecheck unit integration

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

SERVICES := lead-intake scoring routing deals webhooks console

typecheck: install
	$(BIN)/mypy shared/leadflow_shared services/lead-intake/leadflow_intake \
	    services/scoring/leadflow_scoring services/routing/leadflow_routing \
	    services/deals/leadflow_deals services/webhooks/leadflow_webhooks \
	    services/console/leadflow_console launcher/leadflow_launcher
	# Each tests folder has its own conftest module, so each is checked on its own.
	set -e; for d in shared/tests $(foreach s,$(SERVICES),services/$(s)/tests) tests; do \
	    $(BIN)/mypy $$d; done

unit: install
	$(BIN)/pytest shared/tests services -q

integration: install browser
	$(BIN)/pytest tests -q

# Debian's chromium for the headless-browser test (tests/test_form_embed_browser.py), driven
# by the playwright package through executable_path. Never `playwright install`: it downloads
# a browser build of its own, which these machines cannot fetch.
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    chromium >/dev/null; }

# The benchmark suite (docs/benchmarks.md): SQLite and PostgreSQL, ≤ ~25 min; results in
# bench/results/. `make bench BENCH_ARGS=--quick` for development (≤ ~5 min).
BENCH_ARGS ?=
bench: install
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Known vulnerabilities in every pinned package (docs/security.md). Needs the vulnerability
# database (PyPI's JSON API, or OSV with PIP_AUDIT_ARGS="-s osv"), which the development
# machines cannot reach: run it in a connected CI. pip-audit is pinned here, not in
# constraints.txt (it is a tool of this target, not of the project).
PIP_AUDIT_VERSION := 2.10.1
PIP_AUDIT_ARGS ?=
audit: install
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
	    -c constraints.txt pip-audit==$(PIP_AUDIT_VERSION)
	$(BIN)/pip-audit -r constraints.txt --no-deps --disable-pip --strict \
	    --progress-spinner off $(PIP_AUDIT_ARGS)

# Soak (docs/RELIABILITY.md, scenario 8): 10 min at 50 leads/s; RSS and lag must stay flat.
# Not in `make test` (it takes ~13 minutes). `make soak SOAK_ARGS="--database postgres"`.
SOAK_ARGS ?=
soak: install
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
