"""The simulation's own tables: which run made this warehouse, and the ground truth.

They live in schema `simulation`, created only by `bis simulate`, so a real warehouse never
has them and anything that finds them (the dashboard) knows the data is synthetic.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import duckdb

from pipelines.lib.engine.url import WarehouseUrl
from pipelines.lib.simulation.responses import Outcome
from pipelines.lib.warehouse import connect

MARKER_FILE = "SIMULATION"  # in the data dir: `bis simulate` only ever resets such a folder

_DDL = """
create schema if not exists simulation;
create table if not exists simulation.runs (
    run_id          varchar     primary key,
    sequence_id     varchar     not null,
    days            integer     not null,
    users_per_day   integer     not null,
    base_rate       double      not null,
    true_lift       double      not null,
    seed            integer     not null,
    started_at      timestamptz not null,  -- simulated clock of day 1
    finished_at     timestamptz            -- simulated clock of the final run
);
create table if not exists simulation.outcomes (
    user_id              varchar     primary key,
    sequence_id          varchar     not null,
    variant              varchar     not null,
    received_email       boolean     not null,
    response_probability double      not null,
    converted            boolean     not null,
    decided_at           timestamptz not null
);
"""


def create_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(_DDL)


def is_simulation(con: duckdb.DuckDBPyConnection) -> bool:
    found = con.execute(
        "select count(*) from information_schema.tables"
        " where table_schema = 'simulation' and table_name = 'runs'"
    ).fetchone()
    return bool(found and found[0])


def simulation_run(con: duckdb.DuckDBPyConnection) -> dict | None:
    """The latest simulation run recorded in this warehouse, or None for real data."""
    if not is_simulation(con):
        return None
    from pipelines.lib.reporting.queries import fetch  # not at import: reporting imports us

    rows = fetch(con, "select * from simulation.runs order by started_at desc limit 1")
    return rows[0] if rows else None


def record_run(con: duckdb.DuckDBPyConnection, **values: object) -> None:
    names = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    con.execute(f"insert into simulation.runs ({names}) values ({marks})", list(values.values()))


def finish_run(con: duckdb.DuckDBPyConnection, run_id: str, finished_at: datetime) -> None:
    con.execute(
        "update simulation.runs set finished_at = ? where run_id = ?", [finished_at, run_id]
    )


def record_outcomes(
    con: duckdb.DuckDBPyConnection, sequence_id: str, outcomes: Iterable[Outcome]
) -> None:
    rows = [
        (o.user_id, sequence_id, o.variant, o.received_email, o.response_probability,
         o.converted, o.decided_at)
        for o in outcomes
    ]  # fmt: skip
    if rows:
        con.executemany("insert into simulation.outcomes values (?, ?, ?, ?, ?, ?, ?)", rows)


def ground_truth(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    """Users and conversions per variant as the simulation drew them."""
    rows = con.execute(
        "select variant, count(*), count(*) filter (where converted),"
        " count(*) filter (where received_email)"
        " from simulation.outcomes group by variant"
    ).fetchall()
    return {
        variant: {"users": users, "converted": converted, "received_email": received}
        for variant, users, converted, received in rows
    }


def prepare_data_dir(data_dir: Path, *, reset: bool) -> None:
    """A fresh folder for the simulation; never touches one that holds real data."""
    marker = data_dir / MARKER_FILE
    if data_dir.exists() and any(data_dir.iterdir()):
        if not marker.exists():
            raise ValueError(
                f"{data_dir} is not empty and is not a simulation folder (no {MARKER_FILE}"
                " file); choose an empty folder with --data-dir"
            )
        if not reset:
            raise ValueError(
                f"{data_dir} holds an earlier simulation; pass --reset to start it again"
            )
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(
        "This folder was written by `bis simulate`: synthetic users, not real results.\n"
    )


def _server_tables(con) -> list[tuple[str, str, str]]:
    """(schema, name, type) of every table and view in the database but the server's own."""
    return con.execute(
        "select table_schema, table_name, table_type from information_schema.tables"
        " where table_schema <> 'information_schema' and left(table_schema, 3) <> 'pg_'"
        " order by 1, 2"
    ).fetchall()


def prepare_server_warehouse(url: WarehouseUrl, *, reset: bool, dry_run: bool = False) -> None:
    """A fresh database for the simulation on a server, by the folder's rule: an empty
    database is taken; one holding an earlier simulation (`simulation.runs`) is emptied with
    `reset`; one holding anything else (a real warehouse) is refused. `dry_run` only checks,
    so that the folder and the database are both checked before either changes."""
    with connect(url) as con:
        tables = _server_tables(con)
        if not tables:
            return
        if not any(table[:2] == ("simulation", "runs") for table in tables):
            raise ValueError(
                f"{url.display()} is not empty and is not a simulation warehouse (no"
                " simulation.runs table); give --warehouse-url an empty database"
            )
        if not reset:
            raise ValueError(
                f"{url.display()} holds an earlier simulation; pass --reset to start it again"
            )
        if dry_run:
            return
        for schema in sorted({schema for schema, _, _ in tables} - {"public"}):
            con.execute(f'drop schema if exists "{schema}" cascade')
        for schema, name, kind in tables:
            if schema == "public":  # the database's default schema stays, emptied
                what = "view" if kind == "VIEW" else "table"
                con.execute(f'drop {what} if exists public."{name}" cascade')
