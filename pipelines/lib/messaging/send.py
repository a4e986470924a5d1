"""send_messages: deliver planned ledger rows at most once each (docs/architecture.md §8).

Per batch: every row is re-decided by the send-time gate (flags as they are now, the
suppression list) and claimed as `sending` in one committed transaction before the provider
is called; rows no longer allowed become `cancelled` there instead. Then the claimed rows are
resolved to `sent`, `failed` or `unknown`. A process that dies in between leaves `sending`
rows; the next run marks them `unknown` (they may have gone out) and never resends them:
webhook events reconcile them later by send_id. A refusal of the provider account (revoked
key) stops the run and puts the rows it claimed back to `planned`.

On PostgreSQL several send workers may run at once: each claim locks the rows it takes
(`for update skip locked`), so a row another worker is claiming is skipped, never waited
for or taken twice; a worker's `sending` rows count as orphaned only once its session (and
the advisory lock it holds for its run) is gone (docs/architecture.md §16).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from pipelines.lib.clock import wall_clock
from pipelines.lib.email import (
    EmailSender,
    OutgoingBatch,
    ProviderAccountError,
    Recipient,
    SendOutcome,
)
from pipelines.lib.messaging.gate import GateRow, SendGate, SendStopped
from pipelines.lib.warehouse import Connection, is_postgres

BATCH_SIZE = 1000  # SendGrid's limit of personalizations per request


class SendCeilingExceeded(RuntimeError):
    """More messages are planned than one run may send: nothing was sent."""


class SendHalted(RuntimeError):
    """The run stopped before every planned row was tried; `report` holds what it did."""

    def __init__(self, message: str, report: SendReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class SendReport:
    run_id: str
    provider: str
    orphans_marked_unknown: int = 0
    statuses: Counter = field(default_factory=Counter)  # sent / failed / unknown -> rows
    errors: Counter = field(default_factory=Counter)  # failure reason -> rows
    cancelled: Counter = field(default_factory=Counter)  # why the gate refused -> rows
    requests: int = 0

    @property
    def attempted(self) -> int:
        return sum(self.statuses.values())


PLANNED_ROWS_SQL = """
select s.send_id, s.user_id, s.email, s.sequence_id, s.step_id, s.template,
       u.name, p.steps_completed, p.next_step_name, p.percent_complete,
       p.current_streak_days, p.active_days_last_7,
       s.flag_key, s.plan_id, coalesce(u.is_admin, false)
from messaging.sends s
left join marts.dim_users u using (user_id)
left join marts.user_progress p using (user_id)
where s.status = 'planned'
-- The plan stores rows in this order (see plan.py), so a batch touches contiguous rows.
order by s.template, s.sequence_id, s.step_id, s.send_id
"""
# Session advisory locks of running send workers (PostgreSQL): (this class, hash of run id).
SEND_RUN_LOCK_CLASS = 4_242_002


def _recipient(row: tuple) -> Recipient:
    (send_id, user_id, email, _, _, _, name, steps, next_step, percent, streak, active) = row[:12]
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


def _gate_row(row: tuple) -> GateRow:
    return GateRow(
        send_id=row[0], user_id=row[1], flag_key=row[12], plan_id=row[13], is_admin=row[14]
    )


def mark_orphans_unknown(con: Connection, run_id: str, now: datetime) -> int:
    """`sending` rows of earlier runs whose process died mid-batch; they may have been
    delivered. On DuckDB sends run one at a time (the warehouse pool), so any such row is
    orphaned; on PostgreSQL only those of runs whose worker no longer holds its lock."""
    others = [
        run
        for (run,) in con.execute(
            "select distinct coalesce(send_run_id, '') from messaging.sends"
            " where status = 'sending' and coalesce(send_run_id, '') <> $run_id",
            {"run_id": run_id},
        ).fetchall()
    ]
    if is_postgres(con):
        others = [run for run in others if not _run_is_alive(con, run)]
    if not others:
        return 0
    rows = con.execute(
        """
        update messaging.sends
        set status = 'unknown', updated_at = $now,
            status_reason = 'send run ' || coalesce(send_run_id, '?') || ' ended before the'
                || ' provider answered; not resent, reconciled from webhook events'
        where status = 'sending' and coalesce(send_run_id, '') in (select unnest($runs))
        returning send_id
        """,
        {"now": now, "runs": others},
    ).fetchall()
    return len(rows)


def hold_run_lock(con: Connection, run_id: str) -> None:
    """PostgreSQL: hold this run's advisory lock for the session, the sign that it is alive."""
    if is_postgres(con):
        con.execute(
            "select pg_advisory_lock($class, hashtext($run_id))",
            {"class": SEND_RUN_LOCK_CLASS, "run_id": run_id},
        )


def _run_is_alive(con: Connection, run_id: str) -> bool:
    (free,) = con.execute(
        "select pg_try_advisory_lock($class, hashtext($run_id))",
        {"class": SEND_RUN_LOCK_CLASS, "run_id": run_id},
    ).fetchone()
    if free:
        con.execute(
            "select pg_advisory_unlock($class, hashtext($run_id))",
            {"class": SEND_RUN_LOCK_CLASS, "run_id": run_id},
        )
    return not free


def _lock_planned(con: Connection, send_ids: list[str]) -> set[str]:
    """Inside the claim's transaction: the rows of `send_ids` still `planned` that this
    process now holds. On PostgreSQL they are locked and rows another worker is claiming are
    skipped, so the updates that follow touch only rows this transaction owns (no waits, no
    deadlocks); on DuckDB the run holds the only writing connection."""
    lock = "for update skip locked" if is_postgres(con) else ""
    rows = con.execute(
        f"""
        select send_id from messaging.sends
        where status = 'planned' and send_id in (select unnest(cast($ids as varchar[])))
        {lock}
        """,
        {"ids": send_ids},
    ).fetchall()
    return {row[0] for row in rows}


def _claim(
    con: Connection, batch_rows: list[tuple], gate: SendGate, run_id: str
) -> tuple[set[str], Counter]:
    """In one transaction: take the batch's rows still `planned`, cancel those the gate
    refuses or whose address or user was suppressed since the plan, and claim the rest as
    `sending`. Returns the claimed ids and the cancellations by reason. A row another process
    re-decided or claimed meanwhile is left alone."""
    params = {"run_id": run_id, "now": wall_clock()}
    con.execute("begin")
    try:
        mine = _lock_planned(con, [row[0] for row in batch_rows])
        # SendStopped (flags unreadable) rolls back below: nothing is claimed or cancelled.
        refused = gate.refusals(con, [_gate_row(row) for row in batch_rows if row[0] in mine])
        cancelled: list[tuple] = []
        if refused:
            cancelled += con.execute(
                """
                update messaging.sends s
                set status = 'cancelled', status_reason = r.reason, send_run_id = $run_id,
                    updated_at = $now
                from (select unnest(cast($ids as varchar[])) as send_id,
                             unnest(cast($reasons as varchar[])) as reason) r
                where s.send_id = r.send_id and s.status = 'planned'
                returning s.status_reason
                """,
                {**params, "ids": list(refused), "reasons": list(refused.values())},
            ).fetchall()
        rest = sorted(mine - refused.keys())
        claimed: list[tuple] = []
        if rest:
            cancelled += con.execute(
                """
                update messaging.sends s
                set status = 'cancelled', send_run_id = $run_id, updated_at = $now,
                    status_reason = 'suppressed since the plan: ' || (
                        select any_value(x.reason) from messaging.suppressions x
                        where lower(x.email) = lower(s.email) or x.user_id = s.user_id)
                where s.status = 'planned'
                  and s.send_id in (select unnest(cast($ids as varchar[])))
                  and exists (select 1 from messaging.suppressions x
                              where lower(x.email) = lower(s.email) or x.user_id = s.user_id)
                returning s.status_reason
                """,
                {**params, "ids": rest},
            ).fetchall()
            claimed = con.execute(
                """
                update messaging.sends set status = 'sending', send_run_id = $run_id,
                       updated_at = $now
                where status = 'planned'
                  and send_id in (select unnest(cast($ids as varchar[])))
                returning send_id
                """,
                {**params, "ids": rest},
            ).fetchall()
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return {row[0] for row in claimed}, Counter(reason for (reason,) in cancelled)


def _resolve(con: Connection, outcomes: list[SendOutcome], provider: str, clock: datetime) -> None:
    if not outcomes:
        return
    con.execute(
        """
        update messaging.sends s
        set status = o.status, provider = $provider,
            provider_message_id = o.provider_message_id,
            attempts = s.attempts + o.attempts, last_error = o.error,
            sent_at = case when o.status = 'sent' then $clock end,
            status_reason = case o.status
                when 'sent' then 'accepted by ' || $provider
                when 'failed' then 'provider refused: ' || coalesce(o.error, '?')
                else 'provider outcome unknown: ' || coalesce(o.error, '?') end,
            updated_at = $now
        from (
            select unnest(cast($send_ids as varchar[])) as send_id,
                   unnest(cast($statuses as varchar[])) as status,
                   unnest(cast($message_ids as varchar[])) as provider_message_id,
                   unnest(cast($errors as varchar[])) as error,
                   unnest(cast($attempts as integer[])) as attempts
        ) o
        where s.send_id = o.send_id and s.status = 'sending'
        """,
        {
            "provider": provider,
            "clock": clock,
            "now": wall_clock(),
            "send_ids": [o.send_id for o in outcomes],
            "statuses": [o.status for o in outcomes],
            "message_ids": [o.provider_message_id for o in outcomes],
            "errors": [o.error for o in outcomes],
            "attempts": [o.attempts for o in outcomes],
        },
    )


def _release(con: Connection, send_ids: list[str], run_id: str, why: str) -> int:
    """Claimed rows the provider certainly did not accept go back to `planned`."""
    return len(
        con.execute(
            """
            update messaging.sends
            set status = 'planned', send_run_id = null, updated_at = $now,
                status_reason = 'not sent: ' || $why
            where status = 'sending' and send_run_id = $run_id
              and send_id in (select unnest(cast($ids as varchar[])))
            returning send_id
            """,
            {"ids": send_ids, "run_id": run_id, "now": wall_clock(), "why": why[:300]},
        ).fetchall()
    )


def _record(report: SendReport, outcomes: list[SendOutcome]) -> None:
    for outcome in outcomes:
        report.statuses[outcome.status] += 1
        if outcome.status != "sent" and outcome.error:
            report.errors[outcome.error[:120]] += 1


def send_planned(
    con: Connection,
    *,
    sender: EmailSender,
    run_id: str,
    max_sends_per_run: int,
    gate: SendGate,
    clock: datetime,
) -> SendReport:
    """Send every `planned` row still allowed, grouped by template in batches of up to 1000.

    `clock` is the pipeline clock of this run: it becomes `sent_at`, which the frequency cap
    of later plans reads. Raises SendHalted (with the report so far) when the provider
    refuses the account or the flags cannot be read: the untried rows stay `planned`.
    """
    report = SendReport(run_id=run_id, provider=sender.provider)
    hold_run_lock(con, run_id)
    report.orphans_marked_unknown = mark_orphans_unknown(con, run_id, wall_clock())
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
    for members in groups.values():
        for start in range(0, len(members), BATCH_SIZE):
            batch_rows = members[start : start + BATCH_SIZE]
            _send_batch(con, batch_rows, report, sender=sender, gate=gate, clock=clock)
    return report


def _send_batch(
    con: Connection,
    batch_rows: list[tuple],
    report: SendReport,
    *,
    sender: EmailSender,
    gate: SendGate,
    clock: datetime,
) -> None:
    """Gate, claim and send one batch of rows that share a template, sequence and step."""
    try:
        claimed, cancelled = _claim(con, batch_rows, gate, report.run_id)
    except SendStopped as exc:
        raise SendHalted(str(exc), report) from None
    report.cancelled.update(cancelled)
    chunk = [_recipient(row) for row in batch_rows if row[0] in claimed]
    if not chunk:
        return
    _, _, _, sequence_id, step_id, template = batch_rows[0][:6]
    batch = OutgoingBatch(
        template=template, sequence_id=sequence_id, step_id=step_id, recipients=chunk
    )
    report.requests += 1
    try:
        outcomes = sender.send(batch)
    except ProviderAccountError as exc:
        _resolve(con, exc.outcomes, sender.provider, clock)
        _record(report, exc.outcomes)
        done = {o.send_id for o in exc.outcomes}
        released = _release(
            con, [r.send_id for r in chunk if r.send_id not in done], report.run_id, str(exc)
        )
        raise SendHalted(f"{exc} ({released} claimed rows put back to planned)", report) from None
    _resolve(con, outcomes, sender.provider, clock)
    _record(report, outcomes)
