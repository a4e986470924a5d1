"""The one warehouse connection helper: lock-aware connect and numbered migrations, on
embedded DuckDB or a PostgreSQL server (`BIS_WAREHOUSE_URL`, docs/architecture.md §16)."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.lib.engine.postgres import PostgresConnection, PostgresError, compat_sql
from pipelines.lib.engine.url import WarehouseUrl, duckdb_url, parse_warehouse_url
from pipelines.lib.runlock import WarehouseBusyError, read_holder, run_lock, wait_seconds

MIGRATIONS_PACKAGE = "pipelines.lib.migrations"
# A connection to either engine: PostgresConnection speaks the part of DuckDB's API we use.
Connection = duckdb.DuckDBPyConnection | PostgresConnection
Target = Path | WarehouseUrl | str  # a str is a BIS_WAREHOUSE_URL
# What either engine raises for a statement or connection it refuses.
WarehouseError = (duckdb.Error, PostgresError)
# Every bis process that migrates a PostgreSQL warehouse takes this advisory lock first.
_MIGRATION_LOCK = 4_242_001
_STAGE_LOCK_CLASS = 4_242_003  # with hashtext(stage name): the stages that take turns


def memory_limit() -> str:
    """DuckDB's memory_limit for the warehouse (`BIS_DUCKDB_MEMORY_LIMIT`, e.g. 3GB)."""
    from pipelines.lib.settings import duckdb_memory_limit

    return duckdb_memory_limit()


# DuckDB: `Conflicting lock is held in /usr/bin/python3.11 (PID 5956)`.
_LOCK_HOLDER = re.compile(r"lock is held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")


class WarehouseLockedError(WarehouseBusyError):
    """Another process holds the DuckDB write lock and did not release it in time."""


def _is_lock_error(exc: duckdb.Error) -> bool:
    return is_lock_text(str(exc))


def is_lock_text(text: str) -> bool:
    """Whether DuckDB's message (or dbt's output around it) is a lock conflict."""
    return "Could not set lock" in text or "Conflicting lock" in text


def _command_line(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    # Arguments may hold newlines; the message must stay one line.
    text = " ".join(raw.decode("utf-8", "replace").replace("\0", " ").split())
    return text if len(text) <= 80 else text[:79] + "…"


def lock_holder(path: Path, duckdb_text: str) -> str:
    """Who holds `path` by DuckDB's lock message: the bis command (from the run lock's
    record) when it is one, else the process's command line, e.g. an analyst's session."""
    match = _LOCK_HOLDER.search(duckdb_text)
    if match is None:
        return "another process"
    pid = int(match.group("pid"))
    holder = read_holder(path.parent)
    if holder is not None and holder.pid == pid:
        return holder.describe()
    command = _command_line(pid) or match.group("program")
    return f"pid {pid} (`{command}`, not a bis command: a DuckDB session?)"


def locked_error(path: Path, duckdb_text: str, waited: float | None) -> WarehouseLockedError:
    """One line naming who holds the warehouse, for a DuckDB lock conflict."""
    how_long = (
        f"; waited {waited:g}s (--wait SECONDS or BIS_WAREHOUSE_WAIT sets how long)"
        if waited is not None
        else "; try again when it is released"
    )
    return WarehouseLockedError(
        f"warehouse busy: {lock_holder(path, duckdb_text)} holds {path}{how_long}"
    )


def is_postgres(con: Connection) -> bool:
    """Whether `con` is on the PostgreSQL server engine (the few places where SQL differs)."""
    return isinstance(con, PostgresConnection)


def serialize(con: Connection, what: str) -> None:
    """Inside a transaction: on PostgreSQL, wait until no other transaction doing `what`
    (plan, ingest, email events) is open, so writers on several machines take turns where
    their work must not interleave; the lock ends with the transaction. DuckDB has a single
    writer already."""
    if is_postgres(con):
        con.execute("select pg_advisory_xact_lock($class, hashtext($what))",
                    {"class": _STAGE_LOCK_CLASS, "what": what})  # fmt: skip


@contextmanager
def taking_turns(target: Target, what: str) -> Iterator[None]:
    """Around work outside a transaction (a dbt build): on PostgreSQL, hold a session lock
    named `what` on the server, so such work from any host runs one at a time. On DuckDB the
    data dir's run lock already does (see runlock.py)."""
    url = as_url(target)
    if not url.is_postgres:
        yield
        return
    con = PostgresConnection(url)
    try:
        params = {"class": _STAGE_LOCK_CLASS, "what": what}
        con.execute("select pg_advisory_lock($class, hashtext($what))", params)
        yield
    finally:
        con.close()  # ends the session, and with it the lock


def as_url(target: Target) -> WarehouseUrl:
    """A DuckDB file path (the embedded default), a URL or its text, as a URL."""
    if isinstance(target, str):
        return parse_warehouse_url(target)
    return target if isinstance(target, WarehouseUrl) else duckdb_url(target)


def connect(
    target: Target,
    *,
    read_only: bool = False,
    max_wait_seconds: float | None = None,
) -> Connection:
    """Open the warehouse: a DuckDB file (retrying its write lock) or a PostgreSQL server."""
    url = as_url(target)
    if url.is_postgres:
        return PostgresConnection(url, read_only=read_only)
    return _connect_duckdb(url.path, read_only=read_only, max_wait_seconds=max_wait_seconds)


def _connect_duckdb(
    path: Path,
    *,
    read_only: bool = False,
    max_wait_seconds: float | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open the DuckDB file, retrying a lock conflict with bounded backoff.

    DuckDB allows one writing process per file; a run queued behind another waits here
    (`max_wait_seconds`, default `runlock.wait_seconds()`) rather than failing at once, and
    the final error names the process holding the lock.
    """
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.exists():
        raise FileNotFoundError(f"warehouse {path} does not exist yet: run `bis run` first")
    wait = wait_seconds() if max_wait_seconds is None else max_wait_seconds
    deadline = time.monotonic() + wait
    delay = 0.1
    while True:
        try:
            con = duckdb.connect(
                str(path), read_only=read_only, config={"memory_limit": memory_limit()}
            )
            con.execute("set timezone = 'UTC'")
            return con
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise
            if time.monotonic() >= deadline:
                raise locked_error(path, str(exc), wait) from exc
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)


def migration_files() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every numbered migration, in order."""
    found = []
    for entry in resources.files(MIGRATIONS_PACKAGE).iterdir():
        match = re.match(r"^(\d+)_.+\.sql$", entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text()))
    return sorted(found)


def apply_migrations(con: Connection) -> list[str]:
    """Apply pending migrations in one transaction each; returns the names applied.

    On PostgreSQL several processes may start at once: an advisory lock lets one migrate
    while the others wait, and the DuckDB functions the queries use are (re)defined first."""
    postgres = isinstance(con, PostgresConnection)
    if postgres:
        con.raw.execute("select pg_advisory_lock(%s)", [_MIGRATION_LOCK])
    try:
        if postgres:
            con.raw.execute(compat_sql())
        return _apply_pending(con, script=con.raw.execute if postgres else con.execute)
    finally:
        if postgres:
            con.raw.execute("select pg_advisory_unlock(%s)", [_MIGRATION_LOCK])


def _apply_pending(con: Connection, script) -> list[str]:
    # The migration files are plain portable DDL: run as written on both engines.
    script("create schema if not exists messaging")
    script(
        """
        create table if not exists messaging.schema_migrations (
            version integer primary key,
            name varchar not null,
            applied_at timestamptz not null default current_timestamp
        )
        """
    )
    done = {
        row[0] for row in con.execute("select version from messaging.schema_migrations").fetchall()
    }
    applied = []
    for version, name, sql in migration_files():
        if version in done:
            continue
        con.execute("begin")
        try:
            script(sql)
            con.execute(
                "insert into messaging.schema_migrations (version, name) values (?, ?)",
                [version, name],
            )
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
        applied.append(name)
    return applied


@contextmanager
def open_warehouse(target: Target, *, read_only: bool = False) -> Iterator[Connection]:
    """A connection with migrations applied (for writers), closed on exit.

    On DuckDB a writer holds the run lock of the warehouse's folder while connected (a no-op
    inside a `bis run` or `bis send`, which hold it throughout), so no other bis process or
    Dagster op writes between its stages. A PostgreSQL server takes many writers at once;
    the stages that must not overlap serialize on the server (docs/architecture.md §16)."""
    url = as_url(target)
    if read_only or url.is_postgres:
        con = connect(url, read_only=read_only)
        try:
            if not read_only:
                apply_migrations(con)
            yield con
        finally:
            con.close()
        return
    with run_lock(url.path.parent):
        con = connect(url)
        try:
            apply_migrations(con)
            yield con
        finally:
            con.close()


_PG_TYPES = (
    (pa.types.is_boolean, "boolean"),
    (pa.types.is_integer, "bigint"),
    (pa.types.is_floating, "double precision"),
    (pa.types.is_string, "text"),
    (pa.types.is_large_string, "text"),
    (pa.types.is_date, "date"),
)


def _pg_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_timestamp(arrow_type):
        return "timestamptz" if arrow_type.tz else "timestamp"
    for test, name in _PG_TYPES:
        if test(arrow_type):
            return name
    raise TypeError(f"no PostgreSQL column type for Arrow {arrow_type}")


@contextmanager
def registered(con: Connection, name: str, table: pa.Table) -> Iterator[None]:
    """`table` readable by name in SQL on `con` meanwhile: a registered Arrow table on
    DuckDB, a temporary table filled with COPY on PostgreSQL. Create it outside a
    transaction: after a failed statement DuckDB refuses every command until the rollback."""
    if not is_postgres(con):
        con.register(name, table)
        try:
            yield
        finally:
            con.unregister(name)
        return
    columns = ", ".join(f"{field.name} {_pg_type(field.type)}" for field in table.schema)
    con.execute(f"drop table if exists {name}")
    con.raw.execute(f"create temp table {name} ({columns})")
    try:
        con.copy_rows(name, table.schema.names, (tuple(row.values()) for row in table.to_pylist()))
        yield
    finally:
        con.raw.execute(f"drop table if exists {name}")
