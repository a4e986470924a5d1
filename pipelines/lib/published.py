"""The published copy: what readers open, so they never block the pipeline nor wait for it.

DuckDB admits one writing process per file, and a reader's read-only session holds a lock that
keeps the writer out too. So the pipeline writes a second DuckDB file next to the warehouse,
`published.duckdb`, after every successful dbt build and at the end of every run: a new file
each time, built from the writer's own connection, fsynced, then renamed over the old one. A
reader with the old file open keeps its snapshot (the rename does not touch an open file); a
reader opening the path gets the new one; nobody sees a half-built mart (docs/architecture.md
§9, "Readers and the published copy").

What it holds: every table of `marts`, `messaging` and `simulation` (when present) and the
ingest bookkeeping `raw.events_rejected`, `raw.email_events_rejected` and
`raw.ingested_files`, each with its warehouse definition (types, keys, defaults); plus
`publication`, one row saying when and at which pipeline clock it was made. Not `raw.events`,
`raw.email_events`, `staging` or `intermediate`: the events are the bulk of the file and
readers query the marts built from them.

On a server warehouse (PostgreSQL) readers need no copy: MVCC gives each reader a consistent
snapshot beside the writer: `needs_copy` says which, and `open_reader`, `publish_warehouse`
and `publish_step` follow it.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from pipelines.lib.atomic_files import fsync_path
from pipelines.lib.clock import wall_clock
from pipelines.lib.engine.url import WarehouseUrl
from pipelines.lib.faults import about
from pipelines.lib.warehouse import Connection, connect, memory_limit, open_warehouse

if TYPE_CHECKING:
    from pipelines.lib.settings import Settings
    from pipelines.lib.steps.context import Opener, RunContext

PUBLISHED_FILE = "published.duckdb"
# Every table of these schemas is published.
PUBLISHED_SCHEMAS = ("marts", "messaging", "simulation")
# Of `raw`, only the small bookkeeping tables: what was rejected and what was ingested.
PUBLISHED_RAW_TABLES = ("events_rejected", "email_events_rejected", "ingested_files")
_COPY = "bis_publishing"  # the temp file's catalog name while it is being written
_PUBLISHED = "published"  # the published file's catalog name in a preview's scratch database


class PublishedCopyMissingError(FileNotFoundError):
    """No pipeline run has published a copy yet."""


@dataclass(frozen=True)
class PublishResult:
    path: Path
    tables: list[str]  # schema.table, in the order copied
    seconds: float  # time to write and replace the file (monotonic)
    size_bytes: int

    def summary_line(self) -> str:
        return f"published: {len(self.tables)} tables for readers at {self.path}"


@dataclass(frozen=True)
class PublishStepResult:
    published: PublishResult | None  # None: the engine needs no copy (PostgreSQL)

    @property
    def failed(self) -> bool:
        return False  # a fault of the machine while publishing raises

    def lines(self) -> list[str]:
        return [self.published.summary_line()] if self.published else []


def published_path(settings: Settings) -> Path:
    """The published copy: `published.duckdb` beside the DuckDB warehouse."""
    return settings.warehouse_path.with_name(PUBLISHED_FILE)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class _Table:
    schema: str
    name: str
    ddl: str | None  # CREATE TABLE as the warehouse has it; None for a view (copied as rows)

    @property
    def qualified(self) -> str:
        return f"{_quote(self.schema)}.{_quote(self.name)}"


def _tables_to_publish(con: duckdb.DuckDBPyConnection, catalog: str) -> list[_Table]:
    schemas = ", ".join(_literal(s) for s in PUBLISHED_SCHEMAS)
    raw_tables = ", ".join(_literal(t) for t in PUBLISHED_RAW_TABLES)
    rows = con.execute(
        f"""
        select schema_name, table_name, sql from duckdb_tables()
        where database_name = $catalog and not temporary
          and (schema_name in ({schemas})
               or (schema_name = 'raw' and table_name in ({raw_tables})))
        union all
        select schema_name, view_name, null from duckdb_views()
        where database_name = $catalog and not temporary and schema_name in ({schemas})
        order by 1, 2
        """,
        {"catalog": catalog},
    ).fetchall()
    return [_Table(schema, name, ddl) for schema, name, ddl in rows]


def _remove_leftovers(folder: Path, name: str) -> None:
    """Temp files of a publish that was killed midway (kill -9, power loss). Publishers are
    serialised by the run lock, so no other publish is writing one now."""
    for leftover in folder.glob(f".{name}.*.tmp*"):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


def publish(
    con: duckdb.DuckDBPyConnection,
    target_path: Path,
    *,
    as_of: datetime | None = None,
) -> PublishResult:
    """Copy the published tables from the writer's connection `con` into a new file, then
    replace `target_path` with it atomically.

    All tables are read in one transaction, so the copy is one consistent state of the
    warehouse. A failure (disk full) leaves `target_path` as it was and no temp file behind.
    """
    started = time.monotonic()
    target_path = Path(target_path)
    folder = target_path.parent
    _remove_leftovers(folder, target_path.name)
    temp = folder / f".{target_path.name}.{uuid.uuid4().hex[:12]}.tmp"
    catalog = con.execute("select current_database()").fetchone()[0]
    tables = _tables_to_publish(con, catalog)
    try:
        with about(temp):
            con.execute(f"attach {_literal(str(temp))} as {_COPY}")
            try:
                _copy_tables(con, catalog, tables, as_of)
                con.execute(f"checkpoint {_COPY}")  # everything in the file, no WAL beside it
            finally:
                con.execute(f"use {_quote(catalog)}")
                con.execute(f"detach {_COPY}")
            fsync_path(temp)
        os.replace(temp, target_path)
        fsync_path(folder)  # the rename itself survives a crash
    except BaseException:
        for path in (temp, Path(f"{temp}.wal")):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        raise
    return PublishResult(
        path=target_path,
        tables=[f"{t.schema}.{t.name}" for t in tables],
        seconds=time.monotonic() - started,
        size_bytes=target_path.stat().st_size,
    )


def _copy_tables(
    con: duckdb.DuckDBPyConnection, catalog: str, tables: list[_Table], as_of: datetime | None
) -> None:
    con.execute("begin")
    try:
        for schema in sorted({t.schema for t in tables}):
            con.execute(f"create schema {_COPY}.{_quote(schema)}")
        for table in tables:
            source = f"{_quote(catalog)}.{table.qualified}"
            if table.ddl is None:
                con.execute(f"create table {_COPY}.{table.qualified} as select * from {source}")
                continue
            # The DDL names `schema.table` only: with the copy as the default catalog it
            # creates the table there, with the warehouse's types, keys and defaults.
            con.execute(f"use {_COPY}")
            con.execute(table.ddl)
            con.execute(f"use {_quote(catalog)}")
            con.execute(f"insert into {_COPY}.{table.qualified} select * from {source}")
        con.execute(
            f"create table {_COPY}.main.publication as select"
            " $published_at::timestamptz as published_at, $as_of::timestamptz as as_of,"
            " $tables::integer as tables",
            {"published_at": wall_clock(), "as_of": as_of, "tables": len(tables)},
        )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise


def reader_target(settings: Settings) -> Path | WarehouseUrl:
    """What readers open: the published copy on DuckDB, the warehouse itself on a server."""
    return published_path(settings) if needs_copy(settings) else settings.warehouse


def needs_copy(settings: Settings) -> bool:
    """Whether readers need the published copy: on DuckDB, yes; a server warehouse
    (PostgreSQL) gives each reader its own snapshot beside the writer (MVCC)."""
    return settings.warehouse.is_duckdb


def publish_warehouse(settings: Settings, *, as_of: datetime | None = None) -> PublishResult | None:
    """Publish the warehouse of `settings` through a writer connection (the run lock is taken,
    re-entrantly inside a `bis run`); None when the engine needs no copy."""
    if not needs_copy(settings):
        return None
    with open_warehouse(settings.warehouse) as con:
        return publish(con, published_path(settings), as_of=as_of)


def publish_step(run: RunContext, writer: Opener) -> PublishStepResult:
    """The pipeline step: publish after the steps whose results readers see (the dbt build,
    then the ledger at the end of `bis run` and `bis send`)."""
    if not needs_copy(run.settings):
        return PublishStepResult(None)
    with writer() as con:
        return PublishStepResult(publish(con, published_path(run.settings), as_of=run.as_of))


def open_reader(settings: Settings) -> Connection:
    """A read-only connection for readers (analysts, `bis user-metrics`, `bis status`, exports):
    on DuckDB the published copy, which no run ever waits for. The caller closes it.

    Within one process DuckDB shares one open file among connections to the same path: while a
    connection stays open, new ones see its snapshot; a process opening after closing them
    all sees the newest copy."""
    if not needs_copy(settings):
        return connect(settings.warehouse, read_only=True)
    path = published_path(settings)
    if not path.exists():
        raise PublishedCopyMissingError(
            f"no published copy of the warehouse at {path} yet: run `bis run` first"
        )
    return connect(path, read_only=True, max_wait_seconds=0)


@contextmanager
def open_scratch(settings: Settings) -> Iterator[Connection]:
    """A writable in-memory database over the published copy, for a dry run (`bis preview`):
    the marts and raw tables are read-only views on the copy; the `messaging` tables are
    in-memory copies with their keys, so the planner may write and roll back. Nothing reaches
    any file. On a server warehouse: an ordinary connection (the dry run rolls back)."""
    if not needs_copy(settings):
        with open_warehouse(settings.warehouse) as server:
            yield server
        return
    path = published_path(settings)
    if not path.exists():
        raise PublishedCopyMissingError(
            f"no published copy of the warehouse at {path} yet: run `bis run` first"
        )
    con = duckdb.connect(":memory:", config={"memory_limit": memory_limit()})
    try:
        con.execute("set timezone = 'UTC'")
        con.execute(f"attach {_literal(str(path))} as {_PUBLISHED} (read_only)")
        rows = con.execute(
            "select schema_name, table_name, sql from duckdb_tables()"
            " where database_name = $catalog order by 1, 2",
            {"catalog": _PUBLISHED},
        ).fetchall()
        for schema in sorted({schema for schema, _, _ in rows} - {"main"}):
            con.execute(f"create schema {_quote(schema)}")
        for schema, name, ddl in rows:
            qualified = f"{_quote(schema)}.{_quote(name)}"
            source = f"{_PUBLISHED}.{qualified}"
            if schema == "messaging":
                con.execute(ddl)
                con.execute(f"insert into {qualified} select * from {source}")
            else:
                con.execute(f"create view {qualified} as select * from {source}")
        yield con
    finally:
        con.close()
