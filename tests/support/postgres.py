"""A throwaway PostgreSQL server for tests of the server engine (tests/dbt/pg_throwaway.py).

Without the server binaries a test using it is skipped, unless BIS_REQUIRE_POSTGRES is set
(as `make test` does, after installing Debian's postgresql package): then it fails.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.dbt import pg_throwaway

_databases = itertools.count(1)


def postgres_required() -> bool:
    return os.environ.get("BIS_REQUIRE_POSTGRES", "").strip().lower() not in ("", "0", "false")


@contextmanager
def running_server(timezone: str = "UTC") -> Iterator[pg_throwaway.Server]:
    bindir = pg_throwaway.find_bindir()
    if bindir is None:
        reason = "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found"
        if postgres_required():
            pytest.fail(f"BIS_REQUIRE_POSTGRES is set: {reason}", pytrace=False)
        pytest.skip(f"{reason}; `make test` installs Debian's postgresql package")
    with pg_throwaway.throwaway_server(bindir, timezone=timezone) as server:
        yield server


def fresh_database(server: pg_throwaway.Server) -> str:
    """A new empty database on `server`, as a `BIS_WAREHOUSE_URL` value."""
    name = f"bis_{os.getpid()}_{next(_databases)}"
    server.admin(f'create database "{name}"')
    return server.url(name)
