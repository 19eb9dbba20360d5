# The two commands a new user needs: `make demo` and `make test`. Everything else is a helper.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test venv system test-system services lint typecheck worker clean docs screenshots

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

system:
	bash scripts/ensure-system.sh

test-system:
	bash scripts/ensure-system.sh test

services:
	bash scripts/ensure-services.sh

# Serve the demo on http://127.0.0.1:8000 (SQLite, local disk, in-process queue, memory broadcast).
demo: system $(STAMP)
	$(BIN)/python -m demo_app

# Install what the tests need, make sure PostgreSQL and Redis run, then run the whole suite.
test: test-system services $(STAMP)
	npm ci --no-audit --no-fund --loglevel=error
	npm test --workspace js
	$(BIN)/ruff check rindle demo_app tests bench
	$(BIN)/mypy rindle
	$(BIN)/python -m pytest -q -p no:cacheprovider

# Build the docs site into site/ (mkdocs, material theme); a broken link or page fails it.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict

# Walk Cohort in the browser (tests/e2e/test_cohort_walk.py), then put the screenshots the
# docs embed in docs/assets/screenshots/.
SHOTS := cohort-feed cohort-member console-overview console-asset
screenshots: test-system services $(STAMP)
	npm ci --no-audit --no-fund --loglevel=error
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/e2e/test_cohort_walk.py
	for s in $(SHOTS); do cp test-artifacts/$$s.png docs/assets/screenshots/$$s.png; done

lint: $(STAMP)
	$(BIN)/ruff check rindle demo_app tests bench
	$(BIN)/mypy rindle

worker: $(STAMP)
	$(BIN)/rindle worker --app demo_app.media:media

clean:
	rm -rf $(VENV) var .pytest_cache
