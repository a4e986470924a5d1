"""Ledger invariants (docs/architecture.md §8): each query returns the offending rows.

Reported, not blocking: a broken invariant fails the run loudly, and sending goes on for
everyone else (the send step's own guarantees do not depend on these queries)."""

from __future__ import annotations

import duckdb

from pipelines.lib.invariants import EXAMPLES, Invariant, find_violations
from pipelines.lib.messaging.policy import TERMINAL_STATUSES, WAITING_STATUSES

_RESOLVED = ", ".join(f"'{s}'" for s in (*TERMINAL_STATUSES, *WAITING_STATUSES, "planned"))

LEDGER_INVARIANTS = (
    Invariant(
        name="no_duplicate_sends",
        description="no (user, sequence, step, enrollment) went out twice",
        offending_sql="""
            select user_id, sequence_id, step_id, enrollment_key, count(*) as sends
            from messaging.sends where status in ('sent', 'sending', 'unknown')
            group by user_id, sequence_id, step_id, enrollment_key having count(*) > 1
        """,
    ),
    Invariant(
        name="no_send_to_suppressed",
        description="nothing was sent to an address after it was suppressed",
        offending_sql="""
            select s.send_id, s.email, x.reason from messaging.sends s
            join messaging.suppressions x
              on (lower(x.email) = lower(s.email) or x.user_id = s.user_id)
             and x.created_at <= s.sent_at
            where s.status = 'sent'
        """,
    ),
    Invariant(
        name="no_send_to_holdout",
        description="no holdout user was sent (or queued) a message",
        offending_sql="""
            select send_id, user_id, sequence_id from messaging.sends
            where variant = 'holdout' and status in ('planned', 'sending', 'sent', 'unknown')
        """,
    ),
    Invariant(
        name="every_row_resolved",
        description="every ledger row is terminal, planned, deferred or capped",
        offending_sql=f"""
            select send_id, status from messaging.sends where status not in ({_RESOLVED})
        """,
    ),
)
INVARIANTS = {invariant.name: invariant for invariant in LEDGER_INVARIANTS}


def violations(
    con: duckdb.DuckDBPyConnection, invariant: str, limit: int = EXAMPLES
) -> list[tuple]:
    """Up to `limit` rows that break the named ledger invariant."""
    return find_violations(con, INVARIANTS[invariant], limit).examples
