"""Invariant queries over the raw tables (used by asset checks and tests)."""

from __future__ import annotations

import duckdb


def unbalanced_files(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """Files whose rows_read differs from loaded + rejected + duplicate."""
    rows = con.execute(
        """
        select path, rows_read, rows_loaded, rows_rejected, rows_duplicate
        from raw.ingested_files
        where rows_read <> rows_loaded + rows_rejected + rows_duplicate
        order by path
        """
    ).fetchall()
    names = ("path", "rows_read", "rows_loaded", "rows_rejected", "rows_duplicate")
    return [dict(zip(names, row, strict=True)) for row in rows]


def event_id_duplicates(con: duckdb.DuckDBPyConnection) -> int:
    """How many stored events repeat an event_id (0 when ingestion is correct)."""
    return con.execute("select count(*) - count(distinct event_id) from raw.events").fetchone()[0]
