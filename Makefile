# Non-Fungible Fakes: the two commands are `make run` and `make test`.
# Both build what they need (virtualenv, packages, browser) on a fresh machine.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
# A stamp per requirements content: editing a requirements file reinstalls, nothing else does.
RUN_STAMP := $(VENV)/.run-$(shell cat requirements.txt requirements-base.txt | sha1sum | cut -c1-12)
DEV_STAMP := $(VENV)/.dev-$(shell cat requirements*.txt | sha1sum | cut -c1-12)
# Browser libraries (plotly.js's cartesian bundle, axe-core for the accessibility tests), pinned
# in package-lock.json; npm ci empties node_modules first, so the stamp goes with an old install.
NODE_STAMP := node_modules/.stamp-$(shell cat package-lock.json | sha1sum | cut -c1-12)

.PHONY: run test test-fast lint format install install-dev browser bench clean

run: $(RUN_STAMP) $(NODE_STAMP)
	@bash bin/run

test: $(DEV_STAMP) $(NODE_STAMP) browser
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/lint-imports
	$(PY) -m pytest $(PYTEST_ARGS)

# The everyday loop: lint, contracts and the suite without worker, browser and slow tests.
test-fast: $(DEV_STAMP) $(NODE_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -m "not worker and not browser and not slow" $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(DEV_STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

install: $(RUN_STAMP) $(NODE_STAMP)
install-dev: $(DEV_STAMP) $(NODE_STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): | $(PY)
	$(PIP) install -r requirements.txt
	@rm -f $(VENV)/.run-* && touch $@

$(DEV_STAMP): | $(PY)
	$(PIP) install -r requirements-dev.txt
	@rm -f $(VENV)/.dev-* $(VENV)/.run-* && touch $@ $(RUN_STAMP)

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null 2>&1 || bash bin/install-node
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $@

# Browser tests drive Debian's Chromium (never a downloaded browser).
browser:
	@command -v chromium >/dev/null 2>&1 || bash bin/install-chromium

bench: $(DEV_STAMP) $(NODE_STAMP) browser
	@for script in bench/*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean:
	rm -rf $(VENV) var node_modules .pytest_cache .ruff_cache
