"""SQL that turns sequences into due steps: one UNION ALL branch per (sequence, step)."""

from __future__ import annotations

from pipelines.lib.sequences import Sequence, condition_sql

# Every column a condition may use: dim_users plus the progress columns of user_progress.
PLAN_USERS_SQL = """
create or replace temp table plan_users as
select d.*, p.next_step_name, p.percent_complete, p.active_days_last_7, p.current_streak_days,
       p.progress_percentile
from marts.dim_users d
left join marts.user_progress p using (user_id)
"""


def sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _enrollments_sql(sequence: Sequence) -> str:
    """(user_id, enrollment_key): the segment's qualified_at, or signed_up_at for a condition."""
    if sequence.audience.segment is not None:
        return (
            f"select user_id, qualified_at as enrollment_key from marts.user_segments"
            f" where segment = {sql_str(sequence.audience.segment)}"
        )
    return (
        f"select user_id, signed_up_at as enrollment_key from plan_users"
        f" where coalesce(({condition_sql(sequence.audience.condition)}), false)"
    )


def due_steps_sql(sequences: list[Sequence]) -> str:
    """Every step whose delay has passed at $as_of and whose conditions hold, per enrollment.

    Not yet filtered by flags, the ledger or guardrails: this is what the audience rules alone
    say is due, so it is also the test of whether an open ledger row is still wanted.
    """
    branches = []
    for sequence in sequences:
        exit_guard = (
            f"and not coalesce(({condition_sql(sequence.exit_when)}), false)"
            if sequence.exit_when
            else ""
        )
        for index, step in enumerate(sequence.steps):
            when = f"and coalesce(({condition_sql(step.when)}), false)" if step.when else ""
            delay = int(step.after.total_seconds())
            branches.append(f"""
            select {sql_str(sequence.id)} as sequence_id, {index} as step_index,
                   {sql_str(step.id)} as step_id, {sql_str(step.template)} as template,
                   {sequence.priority} as priority, {float(sequence.holdout_percent)}
                       as holdout_percent, {sql_str(sequence.flag)} as flag_key,
                   e.user_id, e.enrollment_key,
                   e.enrollment_key + to_seconds({delay}) as due_at
            from ({_enrollments_sql(sequence)}) e
            join plan_users using (user_id)
            where e.enrollment_key is not null
              and e.enrollment_key + to_seconds({delay}) <= $as_of
              {when}
              {exit_guard}""")
    if not branches:
        return "select null::varchar as send_id where false"
    body = "\nunion all\n".join(branches)
    return f"""
    with due as ({body})
    select md5(user_id || '|' || sequence_id || '|' || step_id || '|'
               || epoch_us(enrollment_key)::varchar) as send_id, *
    from due
    """
