"""message_plan: which step of which sequence each user is due at `as_of`, and its decision.

Set-based: the due steps, the ledger comparison and every guardrail are SQL over the marts.
The one Python step is flag bucketing (Unleash's murmur3, docs/architecture.md §7), done per
distinct candidate user with mmh3 (C), then joined back as a table.

Per plan, in order: cancel open rows that are no longer wanted (left the audience, met
exit_when, flag turned off); pick each enrollment's first due step not yet in the ledger (a
deferred or capped row is re-decided); keep one message per user, the lowest priority
number; then apply suppression → holdout → frequency cap → quiet hours.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import pyarrow as pa

from pipelines.lib.clock import wall_clock
from pipelines.lib.email.addresses import valid_email_sql
from pipelines.lib.flags import EnvSetting, FlagSet, evaluate_many
from pipelines.lib.messaging.gate import plan_flag_settings
from pipelines.lib.messaging.ledger_clock import check_pipeline_clock
from pipelines.lib.messaging.plan_sql import PLAN_USERS_SQL, due_steps_sql
from pipelines.lib.messaging.policy import (
    CAP_COUNTED_STATUSES,
    OPEN_STATUSES,
    WAITING_STATUSES,
    Guardrails,
)
from pipelines.lib.sequences import Sequence
from pipelines.lib.warehouse import Connection, registered, serialize

KILL_SWITCH = "messaging"


@dataclass
class PlanResult:
    plan_id: str
    as_of: datetime
    decisions: Counter = field(default_factory=Counter)  # (sequence_id, status) -> messages
    not_enrolled: Counter = field(default_factory=Counter)  # (sequence_id, reason) -> users
    cancelled: Counter = field(default_factory=Counter)  # reason -> rows
    invalid_timezones: int = 0  # decided users whose timezone fell back to UTC
    details: list[dict] = field(default_factory=list)  # per due step, for one-user previews

    def total(self, status: str) -> int:
        return sum(n for (_, s), n in self.decisions.items() if s == status)


def _sql_list(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _flag_table(
    con: Connection, flags: FlagSet, settings: dict[str, EnvSetting], keys: set[str]
) -> pa.Table:
    """Flag decisions for every (candidate user, flag) pair."""
    users = con.execute(
        "select distinct d.user_id, coalesce(u.is_admin, false) from plan_due d"
        " join plan_users u using (user_id) order by 1"
    ).fetchall()
    ids = [u for u, _ in users]
    admins = [bool(a) for _, a in users]
    columns: dict[str, list] = {
        "user_id": [],
        "flag_key": [],
        "enabled": [],
        "state": [],
        "reason": [],
    }
    for key in sorted(keys):
        setting = settings[key]
        for user_id, decision in zip(
            ids, evaluate_many(flags.flags[key], setting, ids, admins), strict=True
        ):
            columns["user_id"].append(user_id)
            columns["flag_key"].append(key)
            columns["enabled"].append(decision.enabled)
            columns["state"].append(setting.state)
            columns["reason"].append(decision.reason)
    return pa.table(
        columns,
        schema=pa.schema(
            [
                ("user_id", pa.string()),
                ("flag_key", pa.string()),
                ("enabled", pa.bool_()),
                ("state", pa.string()),
                ("reason", pa.string()),
            ]
        ),
    )


def flag_settings(
    flags: FlagSet, env: str, keys: set[str], overrides: dict[str, EnvSetting] | None = None
) -> dict[str, EnvSetting]:
    """The setting per flag for this run: the YAML's for `env`, unless overridden."""
    missing = sorted(k for k in keys if k not in flags.flags)
    if missing:
        raise ValueError(f"sequences use unknown flag(s): {', '.join(missing)}")
    chosen = {key: flags.setting(key, env) for key in keys}
    chosen.update({k: v for k, v in (overrides or {}).items() if k in keys})
    return chosen


DECIDE_SQL = rf"""
create or replace temp table plan_decided as
with ledger as (select send_id, status from messaging.sends),
busy_users as (
    -- a message for this user still waits to go out: decide nothing new until it has
    select distinct user_id from messaging.sends where status in ({_sql_list(OPEN_STATUSES)})
),
-- Ranked in subqueries rather than with QUALIFY, so the SQL runs on both engines.
candidates as (
    select * from (
        select v.*, row_number() over (
            partition by v.user_id, v.sequence_id, v.enrollment_key order by v.step_index
        ) as step_rank
        from plan_valid v
        left join ledger l using (send_id)
        where (l.send_id is null or l.status in ({_sql_list(WAITING_STATUSES)}))
          and v.user_id not in (select user_id from busy_users)
    ) ranked_steps
    where step_rank = 1
),
chosen as (
    select * from (
        select c.*, row_number() over (
            partition by user_id order by priority, sequence_id, enrollment_key
        ) as sequence_rank
        from candidates c
    ) ranked_sequences
    where sequence_rank = 1
),
recent as (
    select user_id,
           count(*) filter (where coalesce(sent_at, planned_at) > $as_of - interval 1 day)
               as sends_24h,
           count(*) as sends_7d
    from messaging.sends
    where status in ({_sql_list(CAP_COUNTED_STATUSES)})
      and coalesce(sent_at, planned_at) > $as_of - interval 7 day
    group by user_id
),
suppressed as (
    select distinct lower(email) as email, user_id, reason from messaging.suppressions
),
facts as (
    select c.*, u.email, u.has_valid_timezone,
           -- one malformed address would fail a whole provider batch: never plan it. The
           -- senders' own rule (email/addresses.py), so a planned address is never refused.
           {valid_email_sql("u.email")} as valid_email,
           case when u.has_valid_timezone then u.timezone else 'UTC' end as local_timezone,
           coalesce(r.sends_24h, 0) as sends_24h, coalesce(r.sends_7d, 0) as sends_7d,
           md5_number(c.sequence_id || ':' || c.user_id) % 100 as holdout_bucket,
           (select any_value(s.reason) from suppressed s
             where s.email = lower(u.email) or s.user_id = c.user_id) as suppression_reason
    from chosen c
    join plan_users u using (user_id)
    left join recent r using (user_id)
),
timed as (
    select *, hour(timezone(local_timezone, $as_of)) as local_hour from facts
),
decided as (
    select *,
        case
            when suppression_reason is not null or not valid_email then 'suppressed'
            when holdout_bucket < holdout_percent then 'held_out'
            when sends_24h >= $cap_day or sends_7d >= $cap_week then 'capped'
            when ($quiet_start > $quiet_end and (local_hour >= $quiet_start
                                                 or local_hour < $quiet_end))
              or ($quiet_start < $quiet_end and local_hour >= $quiet_start
                                            and local_hour < $quiet_end) then 'deferred'
            else 'planned'
        end as decision
    from timed
)
select *,
    case when holdout_bucket < holdout_percent then 'holdout' else 'treatment' end as variant,
    case decision
        when 'suppressed' then 'suppressed: ' || coalesce(suppression_reason,
                                                          'no valid email address')
        when 'held_out' then 'holdout bucket ' || holdout_bucket || ' < '
                             || holdout_percent || '%'
        when 'capped' then 'frequency cap: ' || sends_24h || ' in 24h (max ' || $cap_day
                           || '), ' || sends_7d || ' in 7d (max ' || $cap_week || ')'
        when 'deferred' then 'quiet hours: ' || lpad(local_hour::varchar, 2, '0')
                             || ':00 in ' || local_timezone
        else 'due since ' || strftime(due_at, '%Y-%m-%dT%H:%M:%SZ')
    end as decision_reason
from decided
"""


def plan_messages(
    con: Connection,
    *,
    sequences: list[Sequence],
    flags: FlagSet,
    env: str,
    as_of: datetime,
    plan_id: str,
    guardrails: Guardrails | None = None,
    flag_overrides: dict[str, EnvSetting] | None = None,
    only_user_id: str | None = None,
    dry_run: bool = False,
    allow_future_clock: bool = False,
    wall_now: datetime | None = None,
) -> PlanResult:
    """Decide and record this plan in messaging.sends, in one transaction.

    `only_user_id` with `dry_run` is the preview: the same decisions for one user, rolled back.
    A clock before the latest plan's (or, outside dev, far ahead of the machine's) is refused
    with PipelineClockError before anything changes; a preview may look at any clock.
    """
    rails = guardrails or Guardrails()
    keys = {s.flag for s in sequences} | {KILL_SWITCH}
    settings = flag_settings(flags, env, keys, flag_overrides)
    # Rules read the pipeline clock (planned_at feeds the frequency cap); `updated_at` and
    # `created_at` record when the row really changed.
    now = wall_clock()
    result = PlanResult(plan_id=plan_id, as_of=as_of)
    params = {"as_of": as_of}
    con.execute("begin")
    try:
        serialize(con, "plan")
        if not dry_run:
            check_pipeline_clock(
                con, as_of, env=env, wall_now=wall_now or now, allow_future=allow_future_clock
            )
        con.execute(PLAN_USERS_SQL)
        if only_user_id is not None:
            con.execute("delete from plan_users where user_id <> ?", [only_user_id])
        con.execute(f"create or replace temp table plan_due as {due_steps_sql(sequences)}", params)
        with registered(con, "plan_flag_rows", _flag_table(con, flags, settings, keys)):
            con.execute(f"""
                create or replace temp table plan_flagged as
                select d.*, sf.state as flag_state, sf.enabled and mf.enabled as enabled,
                       case when not mf.enabled then '{KILL_SWITCH}: ' || mf.reason
                            else sf.reason end as flag_reason
                from plan_due d
                join plan_flag_rows sf on sf.user_id = d.user_id and sf.flag_key = d.flag_key
                join plan_flag_rows mf on mf.user_id = d.user_id and mf.flag_key = '{KILL_SWITCH}'
            """)
        con.execute(
            "create or replace temp table plan_valid as select * from plan_flagged where enabled"
        )
        for sequence_id, reason, users in con.execute(
            "select sequence_id, flag_key || ' ' || flag_reason, count(distinct user_id)"
            " from plan_flagged where not enabled group by all"
        ).fetchall():
            result.not_enrolled[(sequence_id, reason)] = users

        # Open rows no longer wanted are cancelled before anything new is decided.
        for reason, rows in con.execute(
            f"""
            update messaging.sends s
            set status = 'cancelled', updated_at = $now, plan_id = $plan_id,
                status_reason = coalesce(
                    (select 'flag ' || any_value(f.flag_key) || ': ' || any_value(f.flag_reason)
                     from plan_flagged f where f.send_id = s.send_id),
                    'no longer due: left the audience or met exit_when')
            where s.status in ({_sql_list(("planned", *WAITING_STATUSES))})
              and s.send_id not in (select send_id from plan_valid)
            returning status_reason, 1
        """,
            {"now": now, "plan_id": plan_id},
        ).fetchall():
            result.cancelled[reason] += rows

        con.execute(
            DECIDE_SQL,
            {
                **params,
                "cap_day": rails.cap_per_day,
                "cap_week": rails.cap_per_week,
                "quiet_start": rails.quiet_start_hour,
                "quiet_end": rails.quiet_end_hour,
            },
        )
        write = {"now": now, "plan_id": plan_id, "as_of": as_of}
        con.execute(
            """
            update messaging.sends s
            set status = d.decision, status_reason = d.decision_reason, variant = d.variant,
                flag_state = d.flag_state, flag_reason = d.flag_reason, plan_id = $plan_id,
                updated_at = $now
            from plan_decided d
            where s.send_id = d.send_id
        """,
            {"now": now, "plan_id": plan_id},
        )
        con.execute(
            """
            insert into messaging.sends (
                send_id, user_id, email, sequence_id, step_id, template, enrollment_key,
                status, status_reason, variant, flag_key, flag_state, flag_reason,
                attempts, due_at, plan_id, planned_at, updated_at)
            select send_id, user_id, email, sequence_id, step_id, template, enrollment_key,
                   decision, decision_reason, variant, flag_key, flag_state, flag_reason,
                   0, due_at, $plan_id, $as_of, $now
            from plan_decided
            -- Stored in send order, so each send batch touches a few contiguous vectors of
            -- the ledger: claiming and resolving scattered rows costs ~10x more per batch.
            order by template, sequence_id, step_id, send_id
            on conflict do nothing
        """,
            write,
        )
        con.execute(
            "insert into messaging.plans (plan_id, as_of, env, created_at, flag_settings)"
            " values (?, ?, ?, ?, cast(? as json))",
            [plan_id, as_of, env, now, json.dumps(plan_flag_settings(flags, env, settings))],
        )
        for sequence_id, decision, rows in con.execute(
            "select sequence_id, decision, count(*) from plan_decided group by all"
        ).fetchall():
            result.decisions[(sequence_id, decision)] = rows
        result.invalid_timezones = con.execute(
            "select count(*) from plan_decided where not coalesce(has_valid_timezone, true)"
        ).fetchone()[0]
        if only_user_id is not None:
            result.details = [
                dict(
                    zip(
                        (
                            "sequence_id",
                            "step_id",
                            "enabled",
                            "flag_reason",
                            "decision",
                            "decision_reason",
                            "due_at",
                        ),
                        row,
                        strict=True,
                    )
                )
                for row in con.execute("""
                select f.sequence_id, f.step_id, f.enabled, f.flag_key || ' ' || f.flag_reason,
                       d.decision, d.decision_reason, f.due_at
                from plan_flagged f left join plan_decided d using (send_id)
                order by f.priority, f.step_index""").fetchall()
            ]
        con.execute("rollback" if dry_run else "commit")
    except Exception:
        con.execute("rollback")
        raise
    return result
