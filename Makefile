# Two commands do everything on a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
UI_HOST ?= 127.0.0.1
UI_PORT ?= 3000
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export BIS_DATA_DIR ?= $(CURDIR)/data

.PHONY: help install manifest demo demo-postgres test check check-clock test-postgres test-browser lint ui docs bench clean

help:
	@echo "make demo   set up, generate sample data, run the whole pipeline"
	@echo "           (on the server BIS_WAREHOUSE_URL=postgresql://user:pw@host:port/db names, if set)"
	@echo "make demo-postgres  the demo on a throwaway local PostgreSQL server (installs it when missing)"
	@echo "make test   set up, then lint and the full test suite (pytest + dbt build)"
	@echo "make check  the fast tests only (no dbt build, no server): the edit-test loop"
	@echo "make check-clock  the fast tests with the system clock 400 days ahead (datefudge)"
	@echo "make test-postgres  dbt build on a throwaway PostgreSQL server, marts compared with DuckDB"
	@echo "make ui     the Dagster UI on http://$(UI_HOST):$(UI_PORT)"
	@echo "make test-browser  the dashboard in headless Chromium (installs it when missing)"
	@echo "make docs   dbt docs for the marts (dbt_project/target/index.html)"
	@echo "make bench  the benchmark (BENCH_EVENTS=1000000; 10000000 also runs 1M and 3M)"
	@echo "make bench ENGINE=postgres  the same, plus ingest, dbt, plan and send on a throwaway PostgreSQL server"
	@echo "make clean  remove generated data and the local Dagster instance"

# The venv is rebuilt only when the pins or the package metadata change.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP) manifest

# The dbt manifest the Dagster definitions load (parsed only when a dbt file is newer).
manifest: $(STAMP)
	@$(BIN)/python -m pipelines.lib.dbt_manifest

# The warehouse is BIS_WAREHOUSE_URL when set (a PostgreSQL server), else DuckDB in ./data:
# nothing here sets it, so `BIS_WAREHOUSE_URL=postgresql://... make demo` runs on that server.
demo: $(STAMP)
	$(BIN)/bis generate
	$(BIN)/bis run

# The same demo on a throwaway PostgreSQL server (Debian's package, installed when missing):
# pg_throwaway.py starts it, runs `make demo` with BIS_WAREHOUSE_URL pointing at it, stops it.
demo-postgres: $(STAMP)
	$(BIN)/python tests/dbt/pg_throwaway.py install
	$(BIN)/python tests/dbt/pg_throwaway.py run -- $(MAKE) --no-print-directory demo

# PostgreSQL comes from Debian's package, installed here when missing, so that CI proves
# every model on both engines (docs/architecture.md §10); BIS_REQUIRE_POSTGRES turns a skip into a failure.
# The suite runs on every core (pytest-xdist), one test file per worker at a time so that a
# file's shared fixtures (a built warehouse, a server) are built once.
test: $(STAMP) manifest
	$(BIN)/ruff check .
	$(BIN)/python tests/dbt/pg_throwaway.py install
	BIS_REQUIRE_POSTGRES=1 $(BIN)/python -m pytest -n auto --dist loadfile
	$(MAKE) --no-print-directory check-clock

# Tests marked `slow` need a dbt build, a server (PostgreSQL, Dagster, a browser) or the whole
# pipeline; everything else is the fast subset, parallel on every core (pytest-xdist).
FAST_TESTS := -m "not slow" -q -p no:cacheprovider -n auto
check: $(STAMP) manifest
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(FAST_TESTS)

# One clock: no behaviour or test may depend on the wall clock, so the fast tests must pass
# with the system clock far ahead too. Debian's datefudge (installed when missing) moves the
# wall clock of the test process and its children and leaves monotonic time alone. (Debian
# 12's faketime 0.9.10 breaks Python's timed waits: Event.wait hangs, or sleep fails EINVAL.)
SUDO := $(if $(filter 0,$(shell id -u)),,sudo -n)
CLOCK_AHEAD ?= 400 days
check-clock: $(STAMP) manifest
	@command -v datefudge >/dev/null || \
		($(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq datefudge)
	@ahead="$$(date -u -d '+$(CLOCK_AHEAD)' '+%F %T')"; \
	echo "fast tests with the system clock $(CLOCK_AHEAD) ahead: $$ahead UTC"; \
	datefudge "$$ahead" $(BIN)/python -m pytest $(FAST_TESTS)

# The models on a real PostgreSQL server (docs/architecture.md §10): installs Debian's postgresql package when
# initdb is missing (apt-get, as root or with sudo -n), then the tests start a throwaway server.
test-postgres: $(STAMP)
	$(BIN)/python tests/dbt/pg_throwaway.py install
	BIS_REQUIRE_POSTGRES=1 $(BIN)/python -m pytest tests/dbt/test_postgres.py -q

# The dashboard in a real headless browser: Debian's chromium, installed when missing.
test-browser: $(STAMP)
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	BIS_REQUIRE_BROWSER=1 $(BIN)/python -m pytest tests/browser -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	@mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

# dagster-dbt's prepare_if_dev (dbt parse on load) runs the `dbt` on PATH: the venv's.
ui: $(STAMP) manifest $(DAGSTER_HOME)/dagster.yaml
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/dagster dev -w workspace.yaml -h $(UI_HOST) -p $(UI_PORT)

# dbt's catalog reads the warehouse: run `make demo` first for column types and row counts.
docs: $(STAMP)
	cd dbt_project && ../$(BIN)/dbt docs generate --profiles-dir . --quiet
	@echo "dbt docs: dbt_project/target/index.html (serve: cd dbt_project && ../$(BIN)/dbt docs serve --profiles-dir .)"

# The benchmark (bench/run.py): a table on stdout, bench/results/latest.json (and 10m.json for
# the large run). Its data lives in bench/.work/, never in ./data. ENGINE=postgres also runs
# ingest, dbt, plan and send on a throwaway PostgreSQL server (installed when missing).
BENCH_EVENTS ?= 1000000
ENGINE ?= duckdb
bench: $(STAMP)
ifeq ($(ENGINE),postgres)
	$(BIN)/python tests/dbt/pg_throwaway.py install
endif
	$(BIN)/python bench/run.py --events $(BENCH_EVENTS) --engine $(ENGINE)

clean:
	rm -rf data .dagster_home dbt_project/target dbt_project/logs
