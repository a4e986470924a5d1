-- One row per UTC calendar day from the first user event's day to as_of's day. Each day's KPIs
-- are evaluated as of the END of that day, T_d = min(day + 1 day, as_of), from events up to T_d
-- only, so a trend line never uses hindsight; the last row (T_d = as_of) equals the headline
-- KPIs of dim_users. Definitions are DESIGN §5 (shared macros in macros/onboarding.sql):
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

-- Each user as known at T_d: signed up by T_d once either their signup event or (when that
-- comes later) their first identified event happened; the signup time is re-derived as of T_d.
user_days as (

    select
        days.day,
        days.measured_at,
        onboarding_steps.user_id,
        case
            when onboarding_steps.signup_event_at <= days.measured_at then onboarding_steps.signup_event_at
            else onboarding_steps.first_event_at
        end as signed_up_at,
        {%- for step in onboarding_steps() %}
        onboarding_steps.step_{{ loop.index }}_at{% if not loop.last %},{% endif %}
        {%- endfor %}

    from days
    inner join onboarding_steps
        on least(onboarding_steps.signup_event_at, onboarding_steps.first_event_at) <= days.measured_at

),

user_day_status as (

    select
        day,
        measured_at,
        user_id,
        signed_up_at <= {{ shift_days('measured_at', -var('conversion_window_days')) }} as is_mature,
        {{ is_converted_sql('signed_up_at') }} as is_converted,
        {{ is_started_within_window_sql('signed_up_at') }} as is_started_within_window

    from user_days

),

-- Active at T_d: a track event in (T_d - inactive_after_days, T_d]. A user-day overlaps that
-- window iff its last event is after the start and its first event is not after the end (exact,
-- since the window spans more than one day).
active_user_days as (

    select distinct
        days.day,
        user_daily_activity.user_id

    from days
    inner join user_daily_activity
        on user_daily_activity.activity_date
            between {{ utc_date(shift_days('days.measured_at', -var('inactive_after_days'))) }}
            and {{ utc_date('days.measured_at') }}
        and user_daily_activity.last_event_at > {{ shift_days('days.measured_at', -var('inactive_after_days')) }}
        and user_daily_activity.first_event_at <= days.measured_at

),

daily_counts as (

    select
        user_day_status.day,
        count(*) as signed_up_users,
        sum(case when user_day_status.is_mature then 1 else 0 end) as mature_signups,
        sum(case when user_day_status.is_mature and user_day_status.is_converted then 1 else 0 end)
            as converted_users,
        sum(case when user_day_status.is_mature and user_day_status.is_started_within_window then 1 else 0 end)
            as started_in_window_users,
        sum(case when active_user_days.user_id is not null then 1 else 0 end) as active_users

    from user_day_status
    left join active_user_days
        on user_day_status.day = active_user_days.day
        and user_day_status.user_id = active_user_days.user_id
    group by user_day_status.day

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
