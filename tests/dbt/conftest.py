"""Fixtures for the dbt project tests: a warehouse in tmp_path, the hand-made events, dbt.

The hand-made dataset (fixtures/events.jsonl, written by fixtures/make_events.py) is loaded
straight into raw.events with SQL, then `dbt build` runs with as_of fixed, so the marts can be
compared with values computed by hand.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from pipelines.lib.warehouse import open_warehouse

AS_OF = "2026-11-24T12:00:00+00:00"
T = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
EVENTS_FILE = Path(__file__).resolve().parent / "fixtures" / "events.jsonl"


def handmade_events() -> list[dict]:
    return [json.loads(line) for line in EVENTS_FILE.read_text().splitlines() if line.strip()]


def raw_event_rows(events: Iterable[dict]) -> list[tuple]:
    """The fixture events as raw.events rows (column order of the migration), for any engine."""
    return [
        (
            event["event_id"],
            event["event_type"],
            event["event_name"],
            event["user_id"],
            event["anonymous_id"],
            event["occurred_at"],
            event["occurred_at"],
            None if event["properties"] is None else json.dumps(event["properties"]),
            None if event["traits"] is None else json.dumps(event["traits"]),
            json.dumps({"library": {"name": "tests/dbt"}}),
            "tests/dbt/fixtures/events.jsonl",
            event["ingested_at"],
        )
        for event in events
    ]


class DbtWarehouse:
    """A DuckDB warehouse in a temporary BIS_DATA_DIR, with dbt run against it in process."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / "warehouse.duckdb"
        self.target_path = data_dir / "dbt_target"
        self.log_path = data_dir / "dbt_logs"
        with open_warehouse(self.path):  # creates raw.* through the project's migrations
            pass

    def load_events(self, events: Iterable[dict]) -> int:
        rows = raw_event_rows(events)
        with open_warehouse(self.path) as con:
            con.executemany(
                """
                insert into raw.events (
                    event_id, event_type, event_name, user_id, anonymous_id, occurred_at,
                    received_at, properties, traits, context, source_file, ingested_at
                ) values (?, ?, ?, ?, ?, cast(? as timestamptz), cast(? as timestamptz),
                          cast(? as json), cast(? as json), cast(? as json), ?,
                          cast(? as timestamptz))
                """,
                rows,
            )
        return len(rows)

    def dbt(self, *args: str, as_of: str = AS_OF, extra_vars: dict | None = None) -> list[dict]:
        """Run dbt in a subprocess (as dagster-dbt does); fails the test unless every node passed.

        Returns the results of target/run_results.json. A subprocess, not dbtRunner: dbt-duckdb
        keeps the database open in its process, which would lock the tests out of the file.
        """
        dbt_vars = {"as_of": as_of, **(extra_vars or {})}
        command = [
            str(Path(sys.executable).with_name("dbt")),
            *args,
            "--project-dir", str(DBT_PROJECT_DIR),
            "--profiles-dir", str(DBT_PROJECT_DIR),
            "--target", "duckdb",
            "--target-path", str(self.target_path),
            "--log-path", str(self.log_path),
            "--vars", json.dumps(dbt_vars),
        ]  # fmt: skip
        env = {
            **os.environ,
            "BIS_DATA_DIR": str(self.data_dir),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
        completed = subprocess.run(
            command, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True, check=False
        )
        run_results = self.target_path / "run_results.json"
        results = json.loads(run_results.read_text())["results"] if run_results.exists() else []
        failures = [
            f"{result['unique_id']}: {result['status']} {result.get('message') or ''}"
            for result in results
            if result["status"] not in ("success", "pass")
        ]
        assert completed.returncode == 0 and not failures, (
            f"dbt {' '.join(args)} failed (exit {completed.returncode}):\n"
            + "\n".join(failures)
            + "\n"
            + completed.stdout[-6000:]
            + completed.stderr[-3000:]
        )
        return results

    def query(self, sql: str, params: Sequence | None = None) -> list[dict]:
        with duckdb.connect(str(self.path), read_only=True) as con:
            con.execute("set timezone = 'UTC'")
            cursor = con.execute(sql, params or [])
            columns = [column[0] for column in cursor.description]
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def rows(self, relation: str) -> list[tuple]:
        """Every row of a relation, in a deterministic order."""
        with duckdb.connect(str(self.path), read_only=True) as con:
            con.execute("set timezone = 'UTC'")
            return con.execute(f"select * from {relation} order by all").fetchall()


@pytest.fixture(scope="module")
def handmade_build(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[DbtWarehouse, list[dict]]]:
    """The whole hand-made dataset through one `dbt build` (shared by a test module)."""
    warehouse = DbtWarehouse(tmp_path_factory.mktemp("dbt_handmade"))
    warehouse.load_events(handmade_events())
    results = warehouse.dbt("build")
    yield warehouse, results


@pytest.fixture(name="handmade_events")
def handmade_events_fixture() -> list[dict]:
    return handmade_events()


@pytest.fixture
def empty_dbt_warehouse(tmp_path: Path) -> DbtWarehouse:
    return DbtWarehouse(tmp_path)
