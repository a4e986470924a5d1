"""What email events do to the ledger and the suppression list (docs/architecture.md §8).

- `delivered` (or `processed`, `open`, `click`) for a send in `unknown` confirms it `sent`;
- `bounce`, `dropped`, `spamreport`, `unsubscribe`, `group_unsubscribe` add the address to
  messaging.suppressions with the reason; the next plan honours it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.lib.warehouse import Connection, serialize

SUPPRESSING = {
    "bounce": "bounce",
    "dropped": "bounce",
    "spamreport": "spamreport",
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "unsubscribe",
}
CONFIRMING = ("processed", "delivered", "open", "click")


@dataclass
class ApplyReport:
    confirmed_unknown: int
    suppressions_added: int


def apply_email_events(con: Connection) -> ApplyReport:
    """Idempotent: running it again adds nothing and changes nothing."""
    confirming = ", ".join(f"'{e}'" for e in CONFIRMING)
    mapping = " ".join(f"when '{event}' then '{reason}'" for event, reason in SUPPRESSING.items())
    suppressing = ", ".join(f"'{e}'" for e in SUPPRESSING)
    con.execute("begin")
    try:
        serialize(con, "email_events")
        confirmed = len(
            con.execute(f"""
            update messaging.sends s
            set status = 'sent', updated_at = now(),
                sent_at = coalesce(s.sent_at, e.first_at),
                status_reason = 'confirmed by SendGrid ' || e.first_event || ' event'
            from (
                select send_id, occurred_at as first_at, event as first_event
                from (
                    select send_id, occurred_at, event, row_number() over (
                        partition by send_id order by occurred_at, event) as nth
                    from raw.email_events
                    where event in ({confirming}) and send_id is not null
                ) confirming
                where nth = 1
            ) e
            where s.send_id = e.send_id and s.status = 'unknown'
            returning s.send_id
        """).fetchall()
        )
        added = len(
            con.execute(f"""
            insert into messaging.suppressions
            select distinct on (lower(e.email), reason)
                   lower(e.email), s.user_id,
                   case e.event {mapping} end as reason,
                   'sendgrid:' || e.event, e.occurred_at
            from raw.email_events e
            left join messaging.sends s using (send_id)
            where e.event in ({suppressing}) and e.email is not null
              and not exists (
                  select 1 from messaging.suppressions x
                  where lower(x.email) = lower(e.email)
                    and x.reason = case e.event {mapping} end)
            order by lower(e.email), reason, e.occurred_at
            returning email
        """).fetchall()
        )
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return ApplyReport(confirmed_unknown=confirmed, suppressions_added=added)
