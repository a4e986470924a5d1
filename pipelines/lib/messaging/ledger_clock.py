"""The ledger's clock never goes backwards, and outside dev never runs far ahead.

A plan at an earlier clock than the last one would re-decide the ledger in the past: steps
not yet due there get their waiting rows cancelled for good, and the next correct plan sends
less. A clock far ahead of the machine's sends what is not due yet. Both are refused before
anything is read or written.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb

FUTURE_TOLERANCE = timedelta(minutes=15)


class PipelineClockError(ValueError):
    """The pipeline clock would move the ledger backwards or run ahead: nothing was done."""


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def latest_plan(con: duckdb.DuckDBPyConnection) -> tuple[str, datetime] | None:
    """(plan_id, as_of) of the plan with the latest clock, or None before the first plan."""
    row = con.execute(
        "select plan_id, as_of from messaging.plans order by as_of desc, created_at desc limit 1"
    ).fetchone()
    return (row[0], row[1]) if row else None


def check_pipeline_clock(
    con: duckdb.DuckDBPyConnection,
    as_of: datetime,
    *,
    env: str,
    wall_now: datetime,
    allow_future: bool = False,
) -> None:
    """Raise PipelineClockError if `as_of` is before the latest plan's clock, or (outside
    dev, unless `allow_future`) more than FUTURE_TOLERANCE ahead of the machine's clock."""
    latest = latest_plan(con)
    if latest is not None and as_of < latest[1]:
        plan_id, latest_as_of = latest
        raise PipelineClockError(
            f"the pipeline clock {_stamp(as_of)} is before the latest plan's clock"
            f" {_stamp(latest_as_of)} ({plan_id}): the ledger's clock never goes backwards,"
            " so nothing was planned, sent or cancelled. Run without --as-of/BIS_AS_OF, or"
            f" with a clock at or after {_stamp(latest_as_of)}."
        )
    if env != "dev" and not allow_future and as_of > wall_now + FUTURE_TOLERANCE:
        ahead = as_of - wall_now
        raise PipelineClockError(
            f"the pipeline clock {_stamp(as_of)} is {_duration(ahead)} ahead of this machine's"
            f" clock ({_stamp(wall_now)}); in {env} a clock more than"
            f" {_duration(FUTURE_TOLERANCE)} ahead is refused because it would send what is"
            " not due yet. If this is intended, pass --allow-future-clock"
            " (BIS_ALLOW_FUTURE_CLOCK=1)."
        )


def _duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} days"
