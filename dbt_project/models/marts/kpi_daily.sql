-- One row per UTC calendar day from the first user event's day to as_of's day. Each day's KPIs
-- are evaluated as of the END of that day, T_d = min(day + 1 day, as_of), from events up to T_d
-- only, so a trend line never uses hindsight; the last row (T_d = as_of) equals the headline
-- KPIs of dim_users. Definitions are docs/architecture.md §5 (shared macros in macros/onboarding.sql):
--   onboarding_conversion_rate = converted_users / mature_signups
--   onboarding_completion_rate = converted_users / started_in_window_users
--   inactivity_rate            = inactive_users / signed_up_users
{%- set t = as_of() %}
with onboarding_steps as (

    select * from {{ ref('int_user_onboarding_steps') }}

),

user_daily_activity as (

    select * from {{ ref('int_user_daily_activity') }}

),

bounds as (

    select
        least(
            (select min({{ utc_date('signed_up_at') }}) from onboarding_steps),
            (select min({{ utc_date('first_event_at') }}) from onboarding_steps),
            (select min(activity_date) from user_daily_activity)
        ) as first_day,
        {{ as_of_date() }} as last_day

),

day_spine as (

    select {{ day_series('first_day', 'last_day') }} as day
    from bounds
    where first_day is not null

),

days as (

    select
        day,
        least({{ shift_hours(utc_midnight('day'), 24) }}, {{ t }}) as measured_at

    from day_spine

),

-- The counts of every day without a (day x user) product. T_d only grows with the day, so each
-- user is counted in each count over a few runs of consecutive days: each run is an interval
-- [starts_at, ends_at) of measurement times (ends_at null: still open at as_of), turned into a
-- +1 on the first day measured at or after starts_at and a -1 on the first day measured at or
-- after ends_at; a running sum over the days gives the counts.
--
-- Signed up and mature: a user is signed up at T_d once least(signup_event_at, first_event_at)
-- <= T_d, with signed_up_at re-derived as of T_d: first_event_at until the signup event happens
-- (when it comes later), then signup_event_at. Each of these at most two phases has a fixed
-- signed_up_at, so it is mature from signed_up_at + conversion_window_days on, and converted or
-- started within the window throughout.
user_phases as (

    select
        user_id,
        first_event_at as signed_up_at,
        first_event_at as phase_starts_at,
        signup_event_at as phase_ends_at,
        {%- for step in onboarding_steps() %}
        step_{{ loop.index }}_at{% if not loop.last %},{% endif %}
        {%- endfor %}

    from onboarding_steps
    where signup_event_at is null
       or signup_event_at > first_event_at

    union all

    select
        user_id,
        signup_event_at as signed_up_at,
        signup_event_at as phase_starts_at,
        cast(null as {{ type_timestamptz() }}) as phase_ends_at,
        {%- for step in onboarding_steps() %}
        step_{{ loop.index }}_at{% if not loop.last %},{% endif %}
        {%- endfor %}

    from onboarding_steps
    where signup_event_at is not null

),

phase_status as (

    select
        user_id,
        phase_starts_at,
        phase_ends_at,
        {{ conversion_window_end('signed_up_at') }} as mature_from,
        {{ is_converted_sql('signed_up_at') }} as is_converted,
        {{ is_started_within_window_sql('signed_up_at') }} as is_started_within_window

    from user_phases

),

-- Active at T_d: a track event in (T_d - inactive_after_days, T_d], i.e. T_d in [event,
-- event + inactive_after_days). For a user-day that is [first_event_at, last_event_at +
-- inactive_after_days) (its events are less than a day apart). The spans of one user start and
-- end in day order, so a span overlaps only through its predecessor: each keeps the part after
-- the previous one's end (the spans become disjoint), and after the user signed up.
activity_spans as (

    select
        user_id,
        first_event_at as active_from,
        {{ shift_days('last_event_at', var('inactive_after_days')) }} as active_until,
        lag({{ shift_days('last_event_at', var('inactive_after_days')) }}) over (
            partition by user_id
            order by activity_date
        ) as previous_active_until

    from user_daily_activity

),

activity_intervals as (

    select
        greatest(
            activity_spans.active_from,
            activity_spans.previous_active_until,
            least(onboarding_steps.signup_event_at, onboarding_steps.first_event_at)
        ) as starts_at,
        activity_spans.active_until as ends_at

    from activity_spans
    inner join onboarding_steps on activity_spans.user_id = onboarding_steps.user_id

),

status_intervals as (

    select
        phase_starts_at as starts_at,
        phase_ends_at as ends_at,
        1 as signed_up_users,
        0 as mature_signups,
        0 as converted_users,
        0 as started_in_window_users,
        0 as active_users

    from phase_status

    union all

    select
        mature_from as starts_at,
        phase_ends_at as ends_at,
        0 as signed_up_users,
        1 as mature_signups,
        case when is_converted then 1 else 0 end as converted_users,
        case when is_started_within_window then 1 else 0 end as started_in_window_users,
        0 as active_users

    from phase_status
    where phase_ends_at is null
       or mature_from < phase_ends_at

    union all

    select
        starts_at,
        ends_at,
        0 as signed_up_users,
        0 as mature_signups,
        0 as converted_users,
        0 as started_in_window_users,
        1 as active_users

    from activity_intervals
    where starts_at < ends_at

),

{%- set counts = ['signed_up_users', 'mature_signups', 'converted_users', 'started_in_window_users', 'active_users'] %}

status_changes as (

    select
        {{ first_day_measured_at_or_after('starts_at') }} as day,
        {%- for count in counts %}
        {{ count }}{% if not loop.last %},{% endif %}
        {%- endfor %}

    from status_intervals
    where starts_at <= {{ t }}

    union all

    select
        {{ first_day_measured_at_or_after('ends_at') }} as day,
        {%- for count in counts %}
        -{{ count }} as {{ count }}{% if not loop.last %},{% endif %}
        {%- endfor %}

    from status_intervals
    where ends_at <= {{ t }}

),

daily_changes as (

    -- a change before the first day counts from the first day
    select
        greatest(status_changes.day, bounds.first_day) as day,
        {%- for count in counts %}
        sum(status_changes.{{ count }}) as {{ count }}{% if not loop.last %},{% endif %}
        {%- endfor %}

    from status_changes
    cross join bounds
    group by greatest(status_changes.day, bounds.first_day)

),

daily_counts as (

    select
        days.day,
        {%- for count in counts %}
        sum(daily_changes.{{ count }}) over (
            order by days.day
            rows between unbounded preceding and current row
        ) as {{ count }}{% if not loop.last %},{% endif %}
        {%- endfor %}

    from days
    left join daily_changes on days.day = daily_changes.day

),

daily_signups as (

    select
        {{ utc_date('signed_up_at') }} as day,
        count(*) as signups

    from onboarding_steps
    group by {{ utc_date('signed_up_at') }}

),

counts as (

    select
        days.day,
        days.measured_at,
        cast(coalesce(daily_signups.signups, 0) as integer) as signups,
        cast(coalesce(daily_counts.signed_up_users, 0) as integer) as signed_up_users,
        cast(coalesce(daily_counts.mature_signups, 0) as integer) as mature_signups,
        cast(coalesce(daily_counts.converted_users, 0) as integer) as converted_users,
        cast(coalesce(daily_counts.started_in_window_users, 0) as integer) as started_in_window_users,
        cast(coalesce(daily_counts.active_users, 0) as integer) as active_users,
        cast(coalesce(daily_counts.signed_up_users - daily_counts.active_users, 0) as integer)
            as inactive_users

    from days
    left join daily_counts on days.day = daily_counts.day
    left join daily_signups on days.day = daily_signups.day

),

final as (

    select
        day as date,
        measured_at,
        signups,
        signed_up_users,
        mature_signups,
        converted_users,
        started_in_window_users,
        active_users,
        inactive_users,
        case when mature_signups > 0
            then cast(converted_users as float8) / mature_signups
        end as onboarding_conversion_rate,
        case when started_in_window_users > 0
            then cast(converted_users as float8) / started_in_window_users
        end as onboarding_completion_rate,
        case when signed_up_users > 0
            then cast(inactive_users as float8) / signed_up_users
        end as inactivity_rate

    from counts

)

select * from final
