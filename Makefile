# Two entry points for a fresh machine: `make demo` runs the main job, `make test` runs the whole suite.
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint bench bench-warehouses bench-peers

setup: $(STAMP)

$(STAMP): requirements-pip.lock requirements.lock pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements-pip.lock
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	# the build backend comes from the lock too (hashed), not from an isolated, unpinned download
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

demo: $(STAMP)  ## generate challenge.db if missing, run the pipeline, write reports/
	$(BIN)/attribution demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks dags
	$(BIN)/ruff format --check src tests benchmarks dags
	$(BIN)/lint-imports --no-cache  # the layers contract: pyproject.toml [tool.importlinter]
	$(BIN)/python scripts/check_dag_imports.py dags  # the DAG contract: no attribution import at parse time

test: lint  ## lint, then every test (SQLite, the local PostgreSQL server, headless Chromium)
	scripts/install-chromium.sh
	$(BIN)/python -m pytest

bench: $(STAMP)  ## the pipeline benchmark at the default size and at 10 million sessions
	$(BIN)/python benchmarks/pipeline.py

bench-warehouses: $(STAMP)  ## SQLite versus the local PostgreSQL server at 10 million sessions, per step
	$(BIN)/python benchmarks/warehouses.py

bench-peers: $(STAMP)  ## path models beside ChannelAttribution and MAM (installs benchmarks/peers.lock into the venv)
	$(BIN)/python -m pip install --quiet --require-hashes -r benchmarks/peers.lock
	$(BIN)/python benchmarks/models.py --scenarios paths-markov-1 ca-markov-1 paths-markov-2 ca-markov-2 \
		paths-markov-3 ca-markov-3 paths-markov-3-30ch ca-markov-3-30ch paths-shapley mam-shapley
