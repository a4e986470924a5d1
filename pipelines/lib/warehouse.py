"""The one DuckDB connection helper: lock-aware connect and numbered migrations."""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import duckdb

from pipelines.lib.runlock import WarehouseBusyError, read_holder, run_lock, wait_seconds

MIGRATIONS_PACKAGE = "pipelines.lib.migrations"
# DuckDB's own default takes 80% of the machine's memory; the pipeline promises a few GiB.
# dbt's profiles read the same variable, so every process holding the warehouse stays bounded.
DEFAULT_MEMORY_LIMIT = "3GB"


def memory_limit() -> str:
    """DuckDB's memory_limit for the warehouse (`BIS_DUCKDB_MEMORY_LIMIT`, e.g. 3GB)."""
    return os.environ.get("BIS_DUCKDB_MEMORY_LIMIT", "").strip() or DEFAULT_MEMORY_LIMIT


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


def connect(
    path: Path,
    *,
    read_only: bool = False,
    max_wait_seconds: float | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse, retrying a lock conflict with bounded backoff.

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


def apply_migrations(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Apply pending migrations in one transaction each; returns the names applied."""
    con.execute("create schema if not exists messaging")
    con.execute(
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
            con.execute(sql)
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
def open_warehouse(path: Path, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection with migrations applied (for writers), closed on exit.

    A writer holds the run lock of the warehouse's folder while connected (a no-op inside a
    `bis run` or `bis send`, which hold it throughout), so no other bis process or Dagster op
    writes between its stages."""
    if read_only:
        con = connect(path, read_only=True)
        try:
            yield con
        finally:
            con.close()
        return
    with run_lock(path.parent):
        con = connect(path)
        try:
            apply_migrations(con)
            yield con
        finally:
            con.close()
