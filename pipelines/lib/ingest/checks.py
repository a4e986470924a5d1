"""Ingestion invariants over the raw tables (docs/architecture.md §4): counts add up per
file, and no event is stored twice. Both stop what reads raw.events when they fail."""

from __future__ import annotations

import duckdb

from pipelines.lib.invariants import Invariant

_UNBALANCED_FILES_SQL = """
    select path, rows_read, rows_loaded, rows_rejected, rows_duplicate
    from raw.ingested_files
    where rows_read <> rows_loaded + rows_rejected + rows_duplicate
    order by path
"""

INGEST_INVARIANTS = (
    Invariant(
        name="ingested_files_counts_add_up",
        description="rows_read = loaded + rejected + duplicate for every file",
        offending_sql=_UNBALANCED_FILES_SQL,
        blocking=True,
    ),
    Invariant(
        name="raw_events_unique_event_id",
        description="every event_id appears once in raw.events",
        offending_sql="""
            select event_id, count(*) as copies from raw.events
            group by event_id having count(*) > 1 order by event_id
        """,
        blocking=True,
    ),
)


def unbalanced_files(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Files whose rows_read differs from loaded + rejected + duplicate."""
    rows = con.execute(_UNBALANCED_FILES_SQL).fetchall()
    names = ("path", "rows_read", "rows_loaded", "rows_rejected", "rows_duplicate")
    return [dict(zip(names, row, strict=True)) for row in rows]


def event_id_duplicates(con: duckdb.DuckDBPyConnection) -> int:
    """How many stored events repeat an event_id (0 when ingestion is correct)."""
    return con.execute("select count(*) - count(distinct event_id) from raw.events").fetchone()[0]
