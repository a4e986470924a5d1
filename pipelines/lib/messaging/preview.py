"""`bis preview USER_ID`: what this user would get next, and exactly why (or why not).

The command previews on `published.open_scratch`: the marts and ledger as the last publish
left them, in an in-memory database, so a preview never waits for a run nor writes a file."""

from __future__ import annotations

from datetime import datetime

import duckdb

from pipelines.lib.messaging.plan import plan_messages
from pipelines.lib.messaging.plan_sql import PLAN_USERS_SQL
from pipelines.lib.messaging.policy import Guardrails
from pipelines.lib.messaging.runtime import PlanInputs
from pipelines.lib.sequences import condition_sql


class UnknownUserError(LookupError):
    pass


def _holds(con: duckdb.DuckDBPyConnection, user_id: str, expression: str) -> bool:
    row = con.execute(
        f"select coalesce(({condition_sql(expression)}), false) from plan_users where user_id = ?",
        [user_id],
    ).fetchone()
    return bool(row and row[0])


def preview_user(
    con: duckdb.DuckDBPyConnection,
    user_id: str,
    inputs: PlanInputs,
    *,
    env: str,
    as_of: datetime,
    guardrails: Guardrails | None = None,
) -> list[str]:
    """Lines explaining the next message for `user_id` (nothing is written)."""
    con.execute(PLAN_USERS_SQL)
    facts = con.execute(
        "select email, nurture_segment, lifecycle_stage, steps_completed, timezone,"
        " has_valid_timezone, is_admin from plan_users where user_id = ?",
        [user_id],
    ).fetchone()
    if facts is None:
        raise UnknownUserError(f"user {user_id!r} is not in marts.dim_users (run `bis run`?)")
    email, segment, stage, steps, timezone, valid_tz, is_admin = facts
    lines = [
        f"user {user_id} <{email}>: segment {segment or 'none'}, stage {stage},"
        f" {steps}/4 onboarding steps, timezone {timezone}"
        f"{'' if valid_tz else ' (invalid, using UTC)'}{', admin' if is_admin else ''}",
    ]
    suppression = con.execute(
        "select reason, source from messaging.suppressions where lower(email) = lower(?)"
        " or user_id = ? limit 1",
        [email or "", user_id],
    ).fetchone()
    if suppression:
        lines.append(f"suppressed: {suppression[0]} (from {suppression[1]})")
    result = plan_messages(
        con,
        sequences=inputs.sequences,
        flags=inputs.flags,
        env=env,
        as_of=as_of,
        plan_id="preview",
        guardrails=guardrails,
        only_user_id=user_id,
        dry_run=True,
    )
    chosen = [d for d in result.details if d["decision"]]
    if chosen:
        d = chosen[0]
        lines.append(
            f"NEXT: {d['sequence_id']}/{d['step_id']} → {d['decision']} ({d['decision_reason']})"
        )
    else:
        lines.append("NEXT: nothing is due now")
    con.execute(PLAN_USERS_SQL)
    sent = dict(
        con.execute(
            "select sequence_id || '/' || step_id, status from messaging.sends where user_id = ?"
            " order by planned_at",
            [user_id],
        ).fetchall()
    )
    for sequence in sorted(inputs.sequences, key=lambda s: s.priority):
        if sequence.audience.segment is not None:
            in_audience = segment == sequence.audience.segment
            why = f"segment {sequence.audience.segment}"
        else:
            in_audience = _holds(con, user_id, sequence.audience.condition)
            why = f"condition {sequence.audience.condition!r}"
        head = f"- {sequence.id} (priority {sequence.priority}, flag {sequence.flag}):"
        if not in_audience:
            lines.append(f"{head} not in audience ({why})")
            continue
        if sequence.exit_when and _holds(con, user_id, sequence.exit_when):
            lines.append(f"{head} exited ({sequence.exit_when})")
            continue
        flag_notes = {d["step_id"]: d for d in result.details if d["sequence_id"] == sequence.id}
        lines.append(f"{head} in audience ({why})")
        for step in sequence.steps:
            key = f"{sequence.id}/{step.id}"
            if key in sent:
                note = f"ledger: {sent[key]}"
            elif step.id in flag_notes:
                d = flag_notes[step.id]
                note = (
                    f"due; {d['flag_reason']}"
                    if not d["enabled"]
                    else f"due; {d['decision'] or 'waits for an earlier step or priority'}"
                )
            elif step.when and not _holds(con, user_id, step.when):
                note = f"when {step.when!r} is false"
            else:
                note = f"not yet due (after {step.after})"
            lines.append(f"    {step.id}: {note}")
    return lines
