-- The floor: dim_users, user_segments and kpi_daily computed straight from raw.events in one
-- DuckDB connection, written by hand the way one would without dbt: no views between layers,
-- one pass per question, only the columns the three tables need. bench/run.py times it and
-- (with --check) verifies that its rows equal the marts', so the definitions (docs/architecture.md §5 and the
-- dbt models) are the same; only the plumbing differs.
--
-- The runner sets the pipeline clock first: `set variable as_of = timestamptz '...'`.
-- Results go to schema bench_floor as tables, written to disk like the marts.

create schema if not exists bench_floor;

-- anonymous_id -> user_id: the first link (by occurred_at, then event_id) up to as_of.
create or replace temp table floor_identity_map as
with linked as (
    select
        nullif(trim(anonymous_id), '') as anonymous_id,
        nullif(trim(user_id), '') as user_id,
        occurred_at,
        event_id
    from raw.events
    where occurred_at <= getvariable('as_of')
)
select anonymous_id, arg_min(user_id, (occurred_at, event_id)) as user_id
from linked
where anonymous_id is not null and user_id is not null
group by anonymous_id;

-- Every event up to as_of attributed to a user (its own id, else its device's link).
create or replace temp table floor_user_events as
with events as (
    select
        nullif(trim(user_id), '') as user_id,
        nullif(trim(anonymous_id), '') as anonymous_id,
        event_type,
        nullif(trim(event_name), '') as event_name,
        occurred_at
    from raw.events
    where occurred_at <= getvariable('as_of')
)
select
    coalesce(events.user_id, floor_identity_map.user_id) as user_id,
    events.user_id is not null as is_identified,
    events.event_type = 'track' as is_tracked,
    events.event_name,
    events.occurred_at
from events
left join floor_identity_map
    on events.user_id is null and events.anonymous_id = floor_identity_map.anonymous_id
where coalesce(events.user_id, floor_identity_map.user_id) is not null;

-- One row per user: milestones and activity, in a single aggregation.
create or replace temp table floor_users as
with facts as (
    select
        user_id,
        min(occurred_at) filter (where is_identified) as first_event_at,
        min(occurred_at) filter (where is_tracked and event_name = 'Signed Up') as signup_event_at,
        min(occurred_at) filter (where is_tracked and event_name = 'Profile Completed') as step_1_at,
        min(occurred_at) filter (where is_tracked and event_name = 'First Project Created')
            as step_2_at,
        min(occurred_at) filter (where is_tracked and event_name = 'Teammate Invited') as step_3_at,
        min(occurred_at) filter (where is_tracked and event_name = 'First Report Shared')
            as step_4_at,
        max(occurred_at) filter (where is_tracked) as last_active_at,
        count(*) filter (
            where is_tracked and occurred_at > getvariable('as_of') - interval 168 hour
        ) as events_last_7d,
        count(*) filter (
            where is_tracked
              and occurred_at > getvariable('as_of') - interval 336 hour
              and occurred_at <= getvariable('as_of') - interval 168 hour
        ) as events_prev_7d
    from floor_user_events
    group by user_id
),
progress as (
    select
        *,
        coalesce(signup_event_at, first_event_at) as signed_up_at,
        (case when step_1_at is not null then 1 else 0 end
            + case when step_2_at is not null then 1 else 0 end
            + case when step_3_at is not null then 1 else 0 end
            + case when step_4_at is not null then 1 else 0 end) as steps_completed,
        greatest(step_1_at, step_2_at, step_3_at, step_4_at) as last_step_at
    from facts
)
select
    *,
    coalesce(
        step_1_at <= signed_up_at + interval 336 hour
        and step_2_at <= signed_up_at + interval 336 hour
        and step_3_at <= signed_up_at + interval 336 hour
        and step_4_at <= signed_up_at + interval 336 hour,
        false
    ) as is_converted,
    coalesce(last_active_at <= getvariable('as_of') - interval 168 hour, true) as is_inactive,
    -- the nurture segment: the first rule met, in priority order (docs/architecture.md §5)
    case
        when last_active_at <= getvariable('as_of') - interval 720 hour then 'lapsed'
        when steps_completed = 4 and last_active_at <= getvariable('as_of') - interval 168 hour
            then 'dormant'
        when steps_completed between 1 and 3
         and last_step_at <= getvariable('as_of') - interval 48 hour then 'stalled'
        when steps_completed = 0 and signed_up_at <= getvariable('as_of') - interval 24 hour
            then 'never_started'
        when events_prev_7d >= 5 and events_last_7d < 0.5 * events_prev_7d then 'declining'
    end as segment
from progress;

create or replace table bench_floor.user_segments as
select
    user_id,
    segment,
    case segment
        when 'lapsed' then last_active_at + interval 720 hour
        when 'dormant' then last_active_at + interval 168 hour
        when 'stalled' then last_step_at + interval 48 hour
        when 'never_started' then signed_up_at + interval 24 hour
        else cast(date_trunc('week', getvariable('as_of') at time zone 'UTC') as timestamp)
            at time zone 'UTC'
    end as qualified_at
from floor_users
where segment is not null;

-- The latest non-null value of each trait, from identify calls up to as_of.
create or replace temp table floor_traits as
with identifies as (
    select
        coalesce(nullif(trim(events.user_id), ''), floor_identity_map.user_id) as user_id,
        (events.occurred_at, events.event_id) as recency,
        nullif(trim(json_extract_string(events.traits, '$."email"')), '') as email,
        nullif(trim(json_extract_string(events.traits, '$."name"')), '') as name,
        json_extract_string(events.traits, '$."timezone"') as timezone,
        case
            when lower(trim(json_extract_string(events.traits, '$."is_admin"')))
                in ('true', 't', '1', 'yes', 'y') then true
            when lower(trim(json_extract_string(events.traits, '$."is_admin"')))
                in ('false', 'f', '0', 'no', 'n') then false
        end as is_admin
    from raw.events as events
    left join floor_identity_map
        on nullif(trim(events.user_id), '') is null
        and nullif(trim(events.anonymous_id), '') = floor_identity_map.anonymous_id
    where events.event_type = 'identify' and events.occurred_at <= getvariable('as_of')
)
select
    user_id,
    arg_max(email, recency) filter (where email is not null) as email,
    arg_max(name, recency) filter (where name is not null) as name,
    arg_max(timezone, recency) filter (where timezone is not null) as timezone,
    arg_max(is_admin, recency) filter (where is_admin is not null) as is_admin
from identifies
where user_id is not null
group by user_id;

create or replace table bench_floor.dim_users as
with valid_timezones as (
    select distinct name from pg_timezone_names()
)
select
    floor_users.user_id,
    floor_traits.email,
    floor_traits.name,
    case when valid_timezones.name is not null then floor_traits.timezone else 'UTC' end
        as timezone,
    valid_timezones.name is not null as has_valid_timezone,
    coalesce(floor_traits.is_admin, false) as is_admin,
    floor_users.signed_up_at,
    floor_users.step_1_at,
    floor_users.step_2_at,
    floor_users.step_3_at,
    floor_users.step_4_at,
    cast(floor_users.steps_completed as integer) as steps_completed,
    floor_users.last_step_at,
    floor_users.steps_completed >= 1 as is_onboarding_started,
    floor_users.steps_completed = 4 as is_onboarding_completed,
    floor_users.is_converted,
    floor_users.last_active_at,
    cast(floor_users.events_last_7d as integer) as events_last_7d,
    cast(floor_users.events_prev_7d as integer) as events_prev_7d,
    floor_users.is_inactive,
    case
        when greatest(floor_users.last_active_at, floor_users.signed_up_at)
            <= getvariable('as_of') - interval 720 hour then 'lapsed'
        when greatest(floor_users.last_active_at, floor_users.signed_up_at)
            <= getvariable('as_of') - interval 168 hour then 'dormant'
        when floor_users.steps_completed = 4 then 'activated'
        when floor_users.steps_completed >= 1 then 'onboarding'
        else 'new'
    end as lifecycle_stage,
    floor_users.segment as nurture_segment
from floor_users
left join floor_traits on floor_users.user_id = floor_traits.user_id
left join valid_timezones on floor_traits.timezone = valid_timezones.name;

-- kpi_daily: each day's KPIs as of the end of that day, T_d = min(day + 1 day, as_of).
create or replace table bench_floor.kpi_daily as
with user_days_active as (
    -- tracked activity per user and UTC day
    select
        user_id,
        cast(occurred_at at time zone 'UTC' as date) as activity_date,
        min(occurred_at) as first_event_at,
        max(occurred_at) as last_event_at
    from floor_user_events
    where is_tracked
    group by all
),
days as (
    select
        day,
        least(cast(day as timestamp) at time zone 'UTC' + interval 24 hour, getvariable('as_of'))
            as measured_at
    from (
        select unnest(generate_series(
            cast(least(
                (select min(cast(signed_up_at at time zone 'UTC' as date)) from floor_users),
                (select min(cast(first_event_at at time zone 'UTC' as date)) from floor_users),
                (select min(activity_date) from user_days_active)
            ) as timestamp),
            cast(cast(getvariable('as_of') at time zone 'UTC' as date) as timestamp),
            interval 1 day
        ))::date as day
    )
),
user_day_status as (
    select
        days.day,
        floor_users.user_id,
        case
            when floor_users.signup_event_at <= days.measured_at then floor_users.signup_event_at
            else floor_users.first_event_at
        end as signed_up_at,
        days.measured_at,
        floor_users.step_1_at,
        floor_users.step_2_at,
        floor_users.step_3_at,
        floor_users.step_4_at
    from days
    inner join floor_users
        on least(floor_users.signup_event_at, floor_users.first_event_at) <= days.measured_at
),
active_user_days as (
    -- active at T_d: a track event in (T_d - 7 days, T_d]
    select distinct days.day, user_days_active.user_id
    from days
    inner join user_days_active
        on user_days_active.activity_date
            between cast((days.measured_at - interval 168 hour) at time zone 'UTC' as date)
            and cast(days.measured_at at time zone 'UTC' as date)
        and user_days_active.last_event_at > days.measured_at - interval 168 hour
        and user_days_active.first_event_at <= days.measured_at
),
daily_counts as (
    select
        status.day,
        count(*) as signed_up_users,
        count(*) filter (where status.is_mature) as mature_signups,
        count(*) filter (where status.is_mature and status.is_converted) as converted_users,
        count(*) filter (where status.is_mature and status.is_started) as started_in_window_users,
        count(active_user_days.user_id) as active_users
    from (
        select
            day,
            user_id,
            signed_up_at <= measured_at - interval 336 hour as is_mature,
            coalesce(
                step_1_at <= signed_up_at + interval 336 hour
                and step_2_at <= signed_up_at + interval 336 hour
                and step_3_at <= signed_up_at + interval 336 hour
                and step_4_at <= signed_up_at + interval 336 hour,
                false
            ) as is_converted,
            coalesce(
                least(step_1_at, step_2_at, step_3_at, step_4_at)
                    <= signed_up_at + interval 336 hour,
                false
            ) as is_started
        from user_day_status
    ) as status
    left join active_user_days
        on status.day = active_user_days.day and status.user_id = active_user_days.user_id
    group by status.day
),
daily_signups as (
    select cast(signed_up_at at time zone 'UTC' as date) as day, count(*) as signups
    from floor_users
    group by all
)
select
    days.day as date,
    days.measured_at,
    cast(coalesce(daily_signups.signups, 0) as integer) as signups,
    cast(coalesce(daily_counts.signed_up_users, 0) as integer) as signed_up_users,
    cast(coalesce(daily_counts.mature_signups, 0) as integer) as mature_signups,
    cast(coalesce(daily_counts.converted_users, 0) as integer) as converted_users,
    cast(coalesce(daily_counts.started_in_window_users, 0) as integer) as started_in_window_users,
    cast(coalesce(daily_counts.active_users, 0) as integer) as active_users,
    cast(coalesce(daily_counts.signed_up_users - daily_counts.active_users, 0) as integer)
        as inactive_users,
    case when daily_counts.mature_signups > 0
        then daily_counts.converted_users / daily_counts.mature_signups end
        as onboarding_conversion_rate,
    case when daily_counts.started_in_window_users > 0
        then daily_counts.converted_users / daily_counts.started_in_window_users end
        as onboarding_completion_rate,
    case when daily_counts.signed_up_users > 0
        then (daily_counts.signed_up_users - daily_counts.active_users)
            / daily_counts.signed_up_users end
        as inactivity_rate
from days
left join daily_counts on days.day = daily_counts.day
left join daily_signups on days.day = daily_signups.day;
