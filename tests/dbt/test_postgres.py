"""The dbt project on a real PostgreSQL server (docs/architecture.md §10).

A throwaway server (pg_throwaway.py) gets the hand-made events in raw.events; `dbt build
--target postgres` must pass (models, data tests, unit tests), and its marts must equal the
DuckDB build of the same events row for row, with the hand-computed headline KPIs.

Without the server binaries the module is skipped, unless BIS_REQUIRE_POSTGRES is set (as
`make test-postgres` does, after installing Debian's postgresql package): then it fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pg_throwaway
import pytest

from pipelines.lib.dbt import DBT_PROJECT_DIR
from pipelines.lib.warehouse import migration_files
from tests.dbt.conftest import raw_event_rows
from tests.support.postgres import running_server

AS_OF = "2026-11-24T12:00:00+00:00"  # as conftest.AS_OF: the DuckDB build uses the same clock
EXPERIMENT_MARTS = ("fct_message_performance", "fct_sequence_experiments")
EVENTS_FILE = Path(__file__).resolve().parent / "fixtures" / "events.jsonl"  # as conftest's
MARTS = ("kpi_daily", "dim_users", "user_segments", "fct_onboarding_funnel", "user_progress")


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[pg_throwaway.Server]:
    # A server time zone far from UTC: the models must not depend on the session's
    # (docs/architecture.md §4).
    with running_server(timezone="Pacific/Chatham") as server:
        yield server


def load_raw_events(server: pg_throwaway.Server, events: list[dict]) -> None:
    """The raw tables from the project's own migration (it is portable SQL), then the events,
    built by the same raw_event_rows as the DuckDB fixture."""
    rows = raw_event_rows(events)
    con = server.connect()
    try:
        with con, con.cursor() as cursor:
            for _, _, sql in migration_files():  # the project's migrations are portable SQL
                cursor.execute(sql)
            cursor.executemany(
                """
                insert into raw.events (
                    event_id, event_type, event_name, user_id, anonymous_id, occurred_at,
                    received_at, properties, traits, context, source_file, ingested_at
                ) values (%s, %s, %s, %s, %s, cast(%s as timestamptz), cast(%s as timestamptz),
                          cast(%s as json), cast(%s as json), cast(%s as json), %s,
                          cast(%s as timestamptz))
                """,
                rows,
            )
    finally:
        con.close()


def dbt_build_postgres(server: pg_throwaway.Server, work_dir: Path) -> list[dict]:
    """`dbt build --target postgres` in a subprocess; fails unless every node passed."""
    target_path = work_dir / "dbt_target"
    command = [
        str(Path(sys.executable).with_name("dbt")), "build",
        "--project-dir", str(DBT_PROJECT_DIR),
        "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target", "postgres",
        "--target-path", str(target_path),
        "--log-path", str(work_dir / "dbt_logs"),
        "--vars", json.dumps({"as_of": AS_OF}),
    ]  # fmt: skip
    env = {**os.environ, **server.env(), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    completed = subprocess.run(
        command, cwd=DBT_PROJECT_DIR, env=env, capture_output=True, text=True, check=False
    )
    run_results = target_path / "run_results.json"
    results = json.loads(run_results.read_text())["results"] if run_results.exists() else []
    failures = [
        f"{result['unique_id']}: {result['status']} {result.get('message') or ''}"
        for result in results
        if result["status"] not in ("success", "pass")
    ]
    assert completed.returncode == 0 and not failures, (
        f"dbt build --target postgres failed (exit {completed.returncode}):\n"
        + "\n".join(failures)
        + "\n"
        + completed.stdout[-6000:]
        + completed.stderr[-3000:]
    )
    manifest = json.loads((target_path / "manifest.json").read_text())
    assert manifest["metadata"]["adapter_type"] == "postgres"
    return results


@pytest.fixture(scope="module")
def postgres_build(
    postgres_server: pg_throwaway.Server,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[pg_throwaway.Server, list[dict]]:
    events = [json.loads(line) for line in EVENTS_FILE.read_text().splitlines() if line.strip()]
    load_raw_events(postgres_server, events)
    results = dbt_build_postgres(postgres_server, tmp_path_factory.mktemp("dbt_postgres"))
    return postgres_server, results


def normalise(value):
    """One value comparable across engines: instants in UTC, numbers as floats to 9 places."""
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value
    if isinstance(value, bool) or value is None or isinstance(value, str | date):
        return value
    if isinstance(value, int | float | Decimal):
        return round(float(value), 9)
    return value


def sort_key(row: tuple) -> tuple:
    return tuple((value is None, type(value).__name__, str(value)) for value in row)


def relation_rows(columns: list[str], rows: list[tuple]) -> tuple[list[str], list[tuple]]:
    normalised = [tuple(normalise(value) for value in row) for row in rows]
    return columns, sorted(normalised, key=sort_key)


def postgres_rows(server: pg_throwaway.Server, relation: str) -> tuple[list[str], list[tuple]]:
    con = server.connect()
    try:
        with con.cursor() as cursor:
            cursor.execute(f"select * from {relation}")
            return relation_rows([c.name for c in cursor.description], cursor.fetchall())
    finally:
        con.close()


def duckdb_rows(warehouse, relation: str) -> tuple[list[str], list[tuple]]:
    import duckdb

    with duckdb.connect(str(warehouse.path), read_only=True) as con:
        con.execute("set timezone = 'UTC'")
        cursor = con.execute(f"select * from {relation}")
        return relation_rows([c[0] for c in cursor.description], cursor.fetchall())


def test_dbt_build_passes_on_postgres_with_models_data_tests_and_unit_tests(postgres_build):
    _, results = postgres_build
    kinds = [result["unique_id"].split(".")[0] for result in results]
    # as test_handmade_dataset asserts for DuckDB: the whole project, not a subset
    assert kinds.count("model") == len(list((DBT_PROJECT_DIR / "models").rglob("*.sql")))
    assert kinds.count("unit_test") >= 11
    assert kinds.count("test") >= 80


def test_schemas_are_exactly_staging_intermediate_marts(postgres_build):
    server, _ = postgres_build
    _, rows = postgres_rows(
        server,
        "(select table_schema, table_name from information_schema.tables"
        " where table_schema in ('staging', 'intermediate', 'marts')) as relations",
    )
    by_schema: dict[str, set[str]] = {}
    for schema, table in rows:
        by_schema.setdefault(schema, set()).add(table)
    assert by_schema["marts"] == set(MARTS) | set(EXPERIMENT_MARTS)
    assert by_schema["staging"] == {
        "stg_segment__events",
        "stg_segment__identifies",
        "stg_messaging__sends",
        "stg_sendgrid__email_events",
    }


@pytest.mark.parametrize("mart", MARTS)
def test_mart_equals_duckdb_row_for_row(postgres_build, handmade_build, mart):
    server, _ = postgres_build
    warehouse, _ = handmade_build
    pg_columns, pg = postgres_rows(server, f"marts.{mart}")
    duck_columns, duck = duckdb_rows(warehouse, f"marts.{mart}")
    assert pg_columns == duck_columns
    assert pg, f"marts.{mart} is empty: the comparison would prove nothing"
    assert pg == duck, f"marts.{mart}: PostgreSQL != DuckDB\n" + describe_differences(
        pg_columns, pg, duck
    )


def describe_differences(columns: list[str], pg: list[tuple], duck: list[tuple]) -> str:
    """Rows on one engine only, paired on the first column, with the columns that differ."""
    only_pg = [row for row in pg if row not in duck]
    only_duck = [row for row in duck if row not in pg]
    lines = [f"{len(pg)} rows on PostgreSQL, {len(duck)} on DuckDB"]
    for row in only_pg[:10]:
        twin = next((other for other in only_duck if other[0] == row[0]), None)
        if twin is None:
            lines.append(f"only on PostgreSQL: {dict(zip(columns, row, strict=True))}")
            continue
        only_duck.remove(twin)
        changed = {
            column: {"postgres": mine, "duckdb": theirs}
            for column, mine, theirs in zip(columns, row, twin, strict=True)
            if mine != theirs
        }
        lines.append(f"{columns[0]}={row[0]!r}: {changed}")
    lines += [f"only on DuckDB: {dict(zip(columns, row, strict=True))}" for row in only_duck[:10]]
    return "\n".join(lines)


def test_headline_kpis_on_postgres_are_the_hand_computed_values(postgres_build):
    server, _ = postgres_build
    columns, rows = postgres_rows(server, "marts.kpi_daily")
    last = dict(zip(columns, max(rows, key=lambda row: row[columns.index("date")]), strict=True))
    assert last["date"] == date(2026, 11, 24)
    assert last["measured_at"] == datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert (last["converted_users"], last["mature_signups"]) == (7, 10)
    assert last["started_in_window_users"] == 8
    assert (last["inactive_users"], last["signed_up_users"]) == (3, 14)
    assert last["onboarding_conversion_rate"] == pytest.approx(7 / 10, abs=1e-9)
    assert last["onboarding_completion_rate"] == pytest.approx(7 / 8, abs=1e-9)
    assert last["inactivity_rate"] == pytest.approx(3 / 14, abs=1e-9)
