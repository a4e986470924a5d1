"""Ledger invariants (asset checks and tests): each query returns the offending rows."""

from __future__ import annotations

import duckdb

from pipelines.lib.messaging.policy import TERMINAL_STATUSES, WAITING_STATUSES

INVARIANTS = {
    "no_duplicate_sends": """
        select user_id, sequence_id, step_id, enrollment_key, count(*) as sends
        from messaging.sends where status in ('sent', 'sending', 'unknown')
        group by all having count(*) > 1
    """,
    "no_send_to_suppressed": """
        select s.send_id, s.email, x.reason from messaging.sends s
        join messaging.suppressions x
          on (lower(x.email) = lower(s.email) or x.user_id = s.user_id)
         and x.created_at <= s.sent_at
        where s.status = 'sent'
    """,
    "no_send_to_holdout": """
        select send_id, user_id, sequence_id from messaging.sends
        where variant = 'holdout' and status in ('planned', 'sending', 'sent', 'unknown')
    """,
    "every_row_resolved": f"""
        select send_id, status from messaging.sends
        where status not in ({
        ", ".join(f"'{s}'" for s in (*TERMINAL_STATUSES, *WAITING_STATUSES, "planned"))
    })
    """,
}


def violations(con: duckdb.DuckDBPyConnection, invariant: str, limit: int = 20) -> list[tuple]:
    return con.execute(f"select * from ({INVARIANTS[invariant]}) limit {limit}").fetchall()
