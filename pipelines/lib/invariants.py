"""Invariants of the warehouse: what must hold after a step, as the query of the rows that
break it. `bis run` and the Dagster asset checks evaluate the same definitions."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.lib.warehouse import Connection

EXAMPLES = 20  # offending rows kept for the report; the count covers them all


@dataclass(frozen=True)
class Invariant:
    name: str
    description: str  # what holds, in words
    offending_sql: str  # one row per violation
    # A failure stops what reads the guarded data (a blocking Dagster check; in `bis run`,
    # the stages after it). Otherwise it is reported and the run goes on, failing at the end.
    blocking: bool = False


@dataclass(frozen=True)
class Violations:
    count: int
    examples: list[tuple]


def find_violations(con: Connection, invariant: Invariant, limit: int = EXAMPLES) -> Violations:
    """The rows that break `invariant`: up to `limit` of them, and how many there are."""
    query = invariant.offending_sql
    examples = con.execute(f"select * from ({query}) as offending limit {limit}").fetchall()
    if len(examples) < limit:
        return Violations(len(examples), examples)
    count = con.execute(f"select count(*) from ({query}) as offending").fetchone()[0]
    return Violations(count, examples)
