"""`bis status`: every step's template renders for a real user of its audience (a synthetic
user when the warehouse has none), so a template that would fail at send time fails here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.lib.email import Recipient, SenderIdentity, TemplateRenderer
from pipelines.lib.ops.status_lines import Report
from pipelines.lib.sequences import Sequence, condition_sql
from pipelines.lib.warehouse import Connection, WarehouseError

SYNTHETIC_CONTEXT: dict[str, Any] = {
    "first_name": "Sam",
    "name": "Sam Example",
    "steps_completed": 2,
    "next_step_name": "Connect a data source",
    "percent_complete": 50,
    "current_streak_days": 3,
    "active_days_last_7": 4,
}

_SAMPLE_SQL = """
select u.user_id, u.email, u.name, p.steps_completed, p.next_step_name, p.percent_complete,
       p.current_streak_days, p.active_days_last_7
from marts.dim_users u
left join marts.user_progress p using (user_id)
where u.user_id in ({audience})
order by u.user_id
limit 1
"""


def _audience_sql(sequence: Sequence) -> str:
    if sequence.audience.segment is not None:
        return "select user_id from marts.user_segments where segment = $segment"
    return (
        f"select user_id from plan_users"
        f" where coalesce(({condition_sql(sequence.audience.condition or '')}), false)"
    )


def _sample_recipient(con: Connection | None, sequence: Sequence) -> tuple[Recipient, bool]:
    """(recipient, True) for a real user of the audience, else (synthetic user, False)."""
    row = None
    if con is not None:
        from pipelines.lib.messaging.plan_sql import PLAN_USERS_SQL

        params = {"segment": sequence.audience.segment} if sequence.audience.segment else {}
        try:
            if not sequence.audience.segment:
                con.execute(PLAN_USERS_SQL)
            row = con.execute(_SAMPLE_SQL.format(audience=_audience_sql(sequence)), params)
            row = row.fetchone()
        except WarehouseError:
            row = None
    if row is None:
        return Recipient(
            "status-sample", "sample", "sam@example.com", "Sam Example", dict(SYNTHETIC_CONTEXT)
        ), False
    user_id, email, name, steps, next_step, percent, streak, active = row
    context = {
        "first_name": name.split()[0] if name and name.strip() else None,
        "name": name,
        "steps_completed": steps or 0,
        "next_step_name": next_step,
        "percent_complete": percent or 0,
        "current_streak_days": streak or 0,
        "active_days_last_7": active or 0,
    }
    recipient = Recipient("status-sample", str(user_id), email or "", name, context)
    return recipient, True


def check_templates(
    report: Report,
    sequences: list[Sequence],
    templates: Path,
    identity: SenderIdentity,
    con: Connection | None,
    why: str,
) -> None:
    renderer = TemplateRenderer(templates, identity)
    problems: list[str] = []
    rendered = 0
    real = 0
    for sequence in sequences:
        recipient, is_real = _sample_recipient(con, sequence)
        real += is_real
        who = f"user {recipient.user_id}" if is_real else "a synthetic user"
        for step in sequence.steps:
            try:
                renderer.render(step.template, recipient)
                rendered += 1
            except Exception as exc:  # any render error blocks this step's sends
                problems.append(f"{step.template} ({sequence.id}, {who}): {exc}")
    if problems:
        report.many("FAIL", f"templates: {len(problems)} do not render", problems)
        return
    source = f"{real} of {len(sequences)} audiences sampled from the warehouse"
    if con is None:
        source = f"synthetic user ({why})"
    report.add("OK", f"templates: {rendered} render ({source})")
