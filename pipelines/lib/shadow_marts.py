"""Marts that change all at once on PostgreSQL (docs/architecture.md §16).

Readers of a server warehouse query it directly: each statement sees one snapshot (MVCC), but
dbt commits model by model, so a query between two commits would see marts of two builds.
On PostgreSQL dbt therefore builds the marts in a shadow schema (`marts__build`, through
`BIS_DBT_MARTS_SCHEMA` and the `generate_schema_name` macro), and one transaction swaps it in
for `marts` after a good build. DuckDB readers use the published copy instead (§9): there both
functions do nothing.
"""

from __future__ import annotations

from pipelines.lib.engine.postgres import PostgresConnection
from pipelines.lib.engine.url import WarehouseUrl

MARTS = "marts"
BUILD_SCHEMA = "marts__build"  # what dbt builds into on PostgreSQL
_OLD_SCHEMA = "marts__old"  # the replaced marts, dropped once the swap is committed

_RELATIONS = (
    "select table_name, table_type from information_schema.tables"
    " where table_schema = %s order by table_name"
)


def prepare(url: WarehouseUrl) -> None:
    """Before a build: an empty shadow schema holding a view on every current mart, so a
    model that refs a mart this build does not rebuild (a selection) still finds it."""
    if not url.is_postgres:
        return
    with PostgresConnection(url) as con, con.raw.transaction():
        raw = con.raw
        raw.execute(f"drop schema if exists {_OLD_SCHEMA} cascade")  # a swap cut short
        raw.execute(f"drop schema if exists {BUILD_SCHEMA} cascade")
        raw.execute(f"create schema {BUILD_SCHEMA}")
        for name, _kind in raw.execute(_RELATIONS, [MARTS]).fetchall():
            raw.execute(f'create view {BUILD_SCHEMA}."{name}" as select * from {MARTS}."{name}"')


def swap_in(url: WarehouseUrl) -> None:
    """After a good build: the shadow schema becomes `marts` in one transaction; the marts
    the build did not rebuild (still views on the old ones) move over unchanged."""
    if not url.is_postgres:
        return
    with PostgresConnection(url) as con:
        raw = con.raw
        with raw.transaction():
            built = raw.execute(_RELATIONS, [BUILD_SCHEMA]).fetchall()
            if not built and not _schema_exists(con, BUILD_SCHEMA):
                return  # nothing was prepared (a build outside the pipeline)
            for name, kind in built:
                if kind == "VIEW":
                    raw.execute(f'drop view {BUILD_SCHEMA}."{name}"')
                    raw.execute(f'alter table {MARTS}."{name}" set schema {BUILD_SCHEMA}')
            if _schema_exists(con, MARTS):
                raw.execute(f"alter schema {MARTS} rename to {_OLD_SCHEMA}")
            raw.execute(f"alter schema {BUILD_SCHEMA} rename to {MARTS}")
        # After the commit: a reader still on an old mart finishes first, none waits.
        raw.execute(f"drop schema if exists {_OLD_SCHEMA} cascade")


def _schema_exists(con: PostgresConnection, name: str) -> bool:
    row = con.raw.execute(
        "select count(*) from information_schema.schemata where schema_name = %s", [name]
    ).fetchone()
    return bool(row and row[0])
