"""Read-only data access for the dashboard.

Every function issues SELECTs only and returns plain rows (lists of dicts), so the dashboard
can be built from a read-only connection. A table that does not exist yet (a fresh warehouse,
or a mart still being built) gives an empty list rather than an error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb

Rows = list[dict[str, Any]]

EXPERIMENT_TABLES = ("fct_sequence_experiments",)
MESSAGE_PERFORMANCE_TABLES = ("fct_message_performance",)


def find_table(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    """`schema.name` of a table or view called `name` (marts first), or None."""
    row = con.execute(
        """
        select table_schema from information_schema.tables
        where table_name = ?
        order by case table_schema when 'marts' then 0 else 1 end, table_schema
        limit 1
        """,
        [name],
    ).fetchone()
    return None if row is None else f'"{row[0]}"."{name}"'


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, name],
    ).fetchone()
    return bool(row and row[0])


def fetch(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> Rows:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _fetch_if(con: duckdb.DuckDBPyConnection, schema: str, table: str, sql: str) -> Rows:
    return fetch(con, sql) if table_exists(con, schema, table) else []


def kpi_daily(con: duckdb.DuckDBPyConnection) -> Rows:
    return _fetch_if(con, "marts", "kpi_daily", "select * from marts.kpi_daily order by date")


def onboarding_funnel(con: duckdb.DuckDBPyConnection) -> Rows:
    return _fetch_if(
        con,
        "marts",
        "fct_onboarding_funnel",
        "select * from marts.fct_onboarding_funnel order by step_number",
    )


def segment_counts(con: duckdb.DuckDBPyConnection) -> Rows:
    return _fetch_if(
        con,
        "marts",
        "user_segments",
        "select segment, count(*) as users from marts.user_segments"
        " group by segment order by users desc, segment",
    )


def segment_sizes_by_day(con: duckdb.DuckDBPyConnection) -> Rows:
    """Per segment and day: current members who had qualified by the end of that day.

    user_segments holds today's membership only, so users who have since left a segment are
    not counted on earlier days; the dashboard says so under the chart.
    """
    return _fetch_if(
        con,
        "marts",
        "user_segments",
        """
        with daily as (
            select segment, cast(qualified_at as date) as day, count(*) as qualified
            from marts.user_segments where qualified_at is not null
            group by all
        )
        select segment, day,
               sum(qualified) over (partition by segment order by day) as users
        from daily order by segment, day
        """,
    )


def sequence_status_counts(con: duckdb.DuckDBPyConnection) -> Rows:
    return _fetch_if(
        con,
        "messaging",
        "sends",
        "select sequence_id, status, count(*) as sends from messaging.sends"
        " group by all order by sequence_id, status",
    )


def sequence_summary(con: duckdb.DuckDBPyConnection) -> Rows:
    return _fetch_if(
        con,
        "messaging",
        "sends",
        """
        select sequence_id,
               count(distinct user_id) as users,
               count(*) as planned,
               count(*) filter (where status = 'sent') as sent,
               count(*) filter (where status = 'failed') as failed,
               count(*) filter (where variant = 'holdout') as held_out,
               max(sent_at) as last_sent_at
        from messaging.sends group by sequence_id order by sequence_id
        """,
    )


def send_status_counts(con: duckdb.DuckDBPyConnection) -> Rows:
    return _fetch_if(
        con,
        "messaging",
        "sends",
        "select status, count(*) as sends from messaging.sends group by status"
        " order by sends desc, status",
    )


def failures_by_reason(con: duckdb.DuckDBPyConnection) -> Rows:
    return _fetch_if(
        con,
        "messaging",
        "sends",
        """
        select coalesce(status_reason, last_error, 'unknown') as reason, count(*) as sends
        from messaging.sends where status in ('failed', 'unknown')
        group by all order by sends desc, reason
        """,
    )


def suppressions_by_reason(con: duckdb.DuckDBPyConnection) -> Rows:
    return _fetch_if(
        con,
        "messaging",
        "suppressions",
        "select reason, count(*) as suppressions from messaging.suppressions"
        " group by reason order by suppressions desc, reason",
    )


def rejected_by_reason(con: duckdb.DuckDBPyConnection) -> Rows:
    """Rejected records of every landing file by code: product events and webhook events,
    as `ingestion_summary` counts both."""
    tables = [
        f"select error_code from raw.{table}"
        for table in ("events_rejected", "email_events_rejected")
        if table_exists(con, "raw", table)
    ]
    if not tables:
        return []
    return fetch(
        con,
        f"select error_code, count(*) as rejected from ({' union all '.join(tables)}) rejected"
        " group by error_code order by rejected desc, error_code",
    )


def ingestion_summary(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Files, rows and the last ingestion time (None when nothing was ingested)."""
    rows = _fetch_if(
        con,
        "raw",
        "ingested_files",
        """
        select count(*) as files, coalesce(sum(rows_loaded), 0) as rows_loaded,
               coalesce(sum(rows_rejected), 0) as rows_rejected,
               coalesce(sum(rows_duplicate), 0) as rows_duplicate,
               max(ingested_at) as last_ingested_at
        from raw.ingested_files
        """,
    )
    if not rows:
        return {
            "files": 0,
            "rows_loaded": 0,
            "rows_rejected": 0,
            "rows_duplicate": 0,
            "last_ingested_at": None,
        }
    return rows[0]


def experiments(con: duckdb.DuckDBPyConnection) -> Rows | None:
    """The experiment mart's rows, or None when the mart does not exist yet."""
    for name in EXPERIMENT_TABLES:
        table = find_table(con, name)
        if table is not None:
            return fetch(con, f"select * from {table}")
    return None


def message_performance(con: duckdb.DuckDBPyConnection) -> Rows | None:
    """Message performance totals per sequence, step and variant, or None without the mart."""
    for name in MESSAGE_PERFORMANCE_TABLES:
        table = find_table(con, name)
        if table is not None:
            return fetch(con, f"select * from {table}")
    return None


def hours_since(moment: datetime | None, as_of: datetime) -> float | None:
    if moment is None:
        return None
    if moment.tzinfo is None and as_of.tzinfo is not None:
        moment = moment.replace(tzinfo=as_of.tzinfo)
    elif moment.tzinfo is not None and as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=moment.tzinfo)
    return (as_of - moment).total_seconds() / 3600
