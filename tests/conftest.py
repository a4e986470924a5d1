"""Shared fixtures: an isolated data dir and warehouse per test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from pipelines.lib.warehouse import open_warehouse

# `make check` runs the fast tests: everything not marked `slow`. Slow means it needs a dbt
# build, a server (PostgreSQL, Dagster's UI, a browser) or the whole pipeline; these folders
# hold nothing else. Slow tests elsewhere carry the mark themselves.
SLOW_FOLDERS = ("bench", "browser", "dbt")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_root = Path(__file__).parent
    for item in items:
        parts = item.path.relative_to(tests_root).parts
        if parts and parts[0] in SLOW_FOLDERS:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh BIS_DATA_DIR for the test, with the landing folder created."""
    directory = tmp_path / "data"
    (directory / "landing" / "events").mkdir(parents=True)
    monkeypatch.setenv("BIS_DATA_DIR", str(directory))
    monkeypatch.setenv("BIS_ENV", "dev")
    return directory


@pytest.fixture
def landing(data_dir: Path) -> Path:
    return data_dir / "landing" / "events"


# Engines a test runs on when it asks for `engine`: the PostgreSQL runs need a server, so
# they are slow (`make test` runs them; `make check` only DuckDB).
ENGINES = ["duckdb", pytest.param("postgres", marks=pytest.mark.slow)]


@pytest.fixture(scope="session")
def postgres_server():
    """One throwaway PostgreSQL server per test process (xdist worker), started on first use."""
    from tests.support.postgres import running_server

    with running_server() as server:
        yield server


@pytest.fixture
def engine() -> str:
    """The warehouse engine: "duckdb" unless a module parametrizes it (see ENGINES)."""
    return "duckdb"


@pytest.fixture
def warehouse_url(engine: str, data_dir: Path, request: pytest.FixtureRequest) -> str:
    """`BIS_WAREHOUSE_URL` of a fresh warehouse on `engine`, set for the test's commands."""
    if engine == "postgres":
        from tests.support.postgres import fresh_database

        url = fresh_database(request.getfixturevalue("postgres_server"))
    else:
        url = f"duckdb://{data_dir / 'warehouse.duckdb'}"
    monkeypatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setenv("BIS_WAREHOUSE_URL", url)
    return url


@pytest.fixture
def warehouse(warehouse_url: str) -> Iterator[duckdb.DuckDBPyConnection]:
    with open_warehouse(warehouse_url) as con:
        yield con


def write_jsonl(path: Path, records: list) -> Path:
    """Records as JSON Lines; a bytes or str item is written as that exact line."""
    with path.open("wb") as handle:
        for record in records:
            if isinstance(record, bytes):
                line = record
            elif isinstance(record, str):
                line = record.encode()
            else:
                line = json.dumps(record).encode()
            handle.write(line + b"\n")
    return path


# Measurements a test records with `record_property(name, value)` for the CI log (the
# rollback drill's delay from the flag change to the last send): printed after the run.
REPORTED_PROPERTIES = ("rollback_drill",)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # The machine's clock as the tests saw it: `make check-clock` moves it ahead, and the log
    # shows that it did (the suite must pass on any date).
    terminalreporter.write_line(f"wall clock of this run: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    for outcome in ("passed", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            for name, value in getattr(report, "user_properties", []):
                if name in REPORTED_PROPERTIES and report.when == "call":
                    terminalreporter.write_line(f"{name} ({outcome}): {json.dumps(value)}")
