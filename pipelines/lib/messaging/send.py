"""send_messages: deliver planned ledger rows at most once each (DESIGN §8).

Per batch: the rows are claimed as `sending` in a committed transaction before the provider
is called, then resolved to `sent`, `failed` or `unknown`. A process that dies in between
leaves `sending` rows; the next run marks them `unknown` (they may have gone out) and never
resends them: webhook events reconcile them later by send_id.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from pipelines.lib.email import EmailSender, OutgoingBatch, Recipient, SendOutcome

BATCH_SIZE = 1000  # SendGrid's limit of personalizations per request


class SendCeilingExceeded(RuntimeError):
    """More messages are planned than one run may send: nothing was sent."""


@dataclass
class SendReport:
    run_id: str
    provider: str
    orphans_marked_unknown: int = 0
    statuses: Counter = field(default_factory=Counter)  # sent / failed / unknown -> rows
    errors: Counter = field(default_factory=Counter)  # failure reason -> rows
    requests: int = 0

    @property
    def attempted(self) -> int:
        return sum(self.statuses.values())


PLANNED_ROWS_SQL = """
select s.send_id, s.user_id, s.email, s.sequence_id, s.step_id, s.template,
       u.name, p.steps_completed, p.next_step_name, p.percent_complete,
       p.current_streak_days, p.active_days_last_7
from messaging.sends s
left join marts.dim_users u using (user_id)
left join marts.user_progress p using (user_id)
where s.status = 'planned'
order by s.template, s.sequence_id, s.step_id, s.rowid  -- storage order: see plan.py
"""


def _recipient(row: tuple) -> Recipient:
    (send_id, user_id, email, _, _, _, name, steps, next_step, percent, streak, active) = row
    first_name = name.split()[0] if name and name.strip() else None
    context = {
        "first_name": first_name,
        "name": name,
        "steps_completed": steps or 0,
        "next_step_name": next_step,
        "percent_complete": percent or 0,
        "current_streak_days": streak or 0,
        "active_days_last_7": active or 0,
    }
    return Recipient(send_id=send_id, user_id=user_id, email=email, name=name, context=context)


def mark_orphans_unknown(con: duckdb.DuckDBPyConnection, run_id: str, now: datetime) -> int:
    """`sending` rows of earlier runs: their process died mid-batch. Sends run one at a time
    (the warehouse pool), so any such row is orphaned; it may have been delivered."""
    rows = con.execute(
        """
        update messaging.sends
        set status = 'unknown', updated_at = $now,
            status_reason = 'send run ' || coalesce(send_run_id, '?') || ' ended before the'
                || ' provider answered; not resent, reconciled from webhook events'
        where status = 'sending' and coalesce(send_run_id, '') <> $run_id
        returning send_id
        """,
        {"now": now, "run_id": run_id},
    ).fetchall()
    return len(rows)


def _claim(con: duckdb.DuckDBPyConnection, send_ids: list[str], run_id: str) -> None:
    # The ids as a list parameter: DuckDB filters the ledger with them instead of joining a
    # registered table against every row of it (several times faster on a large ledger).
    con.execute(
        """
        update messaging.sends set status = 'sending', send_run_id = $run_id,
               updated_at = $now
        where status = 'planned' and send_id in (select unnest($send_ids))
        """,
        {"run_id": run_id, "now": datetime.now(UTC), "send_ids": send_ids},
    )


def _resolve(con: duckdb.DuckDBPyConnection, outcomes: list[SendOutcome], provider: str) -> None:
    con.execute(
        """
        update messaging.sends s
        set status = o.status, provider = $provider,
            provider_message_id = o.provider_message_id,
            attempts = s.attempts + o.attempts, last_error = o.error,
            sent_at = case when o.status = 'sent' then $now end,
            status_reason = case o.status
                when 'sent' then 'accepted by ' || $provider
                when 'failed' then 'provider refused: ' || coalesce(o.error, '?')
                else 'provider outcome unknown: ' || coalesce(o.error, '?') end,
            updated_at = $now
        from (
            select unnest($send_ids) as send_id, unnest($statuses) as status,
                   unnest($message_ids) as provider_message_id, unnest($errors) as error,
                   unnest($attempts) as attempts
        ) o
        where s.send_id = o.send_id and s.status = 'sending'
        """,
        {
            "provider": provider,
            "now": datetime.now(UTC),
            "send_ids": [o.send_id for o in outcomes],
            "statuses": [o.status for o in outcomes],
            "message_ids": [o.provider_message_id for o in outcomes],
            "errors": [o.error for o in outcomes],
            "attempts": [o.attempts for o in outcomes],
        },
    )


def send_planned(
    con: duckdb.DuckDBPyConnection, *, sender: EmailSender, run_id: str, max_sends_per_run: int
) -> SendReport:
    """Send every `planned` row, grouped by template in batches of up to 1000."""
    report = SendReport(run_id=run_id, provider=sender.provider)
    report.orphans_marked_unknown = mark_orphans_unknown(con, run_id, datetime.now(UTC))
    rows = con.execute(PLANNED_ROWS_SQL).fetchall()
    if len(rows) > max_sends_per_run:
        raise SendCeilingExceeded(
            f"{len(rows)} messages are planned but max_sends_per_run is {max_sends_per_run}:"
            " nothing was sent. Check the plan (a flag or audience change?) and raise the"
            " ceiling only if this volume is intended."
        )
    groups: dict[tuple[str, str, str], list[tuple]] = {}
    for row in rows:
        groups.setdefault((row[5], row[3], row[4]), []).append(row)
    for (template, sequence_id, step_id), members in groups.items():
        for start in range(0, len(members), BATCH_SIZE):
            chunk = [_recipient(r) for r in members[start : start + BATCH_SIZE]]
            _claim(con, [r.send_id for r in chunk], run_id)  # committed before the call
            outcomes = sender.send(
                OutgoingBatch(
                    template=template, sequence_id=sequence_id, step_id=step_id, recipients=chunk
                )
            )
            report.requests += 1
            _resolve(con, outcomes, sender.provider)
            for outcome in outcomes:
                report.statuses[outcome.status] += 1
                if outcome.status != "sent" and outcome.error:
                    report.errors[outcome.error[:120]] += 1
    return report
