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

MIGRATIONS_PACKAGE = "pipelines.lib.migrations"
# DuckDB's own default takes 80% of the machine's memory; the pipeline promises a few GiB.
# dbt's profiles read the same variable, so every process holding the warehouse stays bounded.
DEFAULT_MEMORY_LIMIT = "3GB"


def memory_limit() -> str:
    """DuckDB's memory_limit for the warehouse (`BIS_DUCKDB_MEMORY_LIMIT`, e.g. 3GB)."""
    return os.environ.get("BIS_DUCKDB_MEMORY_LIMIT", "").strip() or DEFAULT_MEMORY_LIMIT


_LOCK_HOLDER = re.compile(r"PID (\d+)")


class WarehouseLockedError(RuntimeError):
    """Another process holds the DuckDB write lock and did not release it in time."""


def _is_lock_error(exc: duckdb.Error) -> bool:
    text = str(exc)
    return "Could not set lock" in text or "Conflicting lock" in text


def connect(
    path: Path,
    *,
    read_only: bool = False,
    max_wait_seconds: float = 60.0,
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse, retrying a lock conflict with bounded backoff.

    DuckDB allows one writing process per file; a run queued behind another waits here
    rather than failing at once, and the final error names the process holding the lock.
    """
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.exists():
        raise FileNotFoundError(f"warehouse {path} does not exist yet: run `bis run` first")
    deadline = time.monotonic() + max_wait_seconds
    delay = 0.1
    while True:
        try:
            con = duckdb.connect(
                str(path), read_only=read_only, config={"memory_limit": memory_limit()}
            )
            con.execute("set timezone = 'UTC'")
            return con
        except duckdb.IOException as exc:
            if not _is_lock_error(exc) or time.monotonic() >= deadline:
                if _is_lock_error(exc):
                    holder = _LOCK_HOLDER.search(str(exc))
                    who = f"process {holder.group(1)}" if holder else "another process"
                    raise WarehouseLockedError(
                        f"warehouse {path} is locked by {who} for over {max_wait_seconds:.0f}s;"
                        f" wait for that run to finish. DuckDB said: {exc}"
                    ) from exc
                raise
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
    """A connection with migrations applied (for writers), closed on exit."""
    con = connect(path, read_only=read_only)
    try:
        if not read_only:
            apply_migrations(con)
        yield con
    finally:
        con.close()
