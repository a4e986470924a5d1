-- One row per user known at as_of with every per-user fact of docs/architecture.md §5 evaluated at T = as_of:
-- onboarding progress, conversion, activity windows, inactivity and lifecycle stage. The
-- nurture segment rules read only this model (int_user_segment_candidates).
{%- set t = as_of() %}
{%- set day_7 = utc_date(shift_days(t, -7)) %}
{%- set day_14 = utc_date(shift_days(t, -14)) %}
with onboarding_steps as (

    select * from {{ ref('int_user_onboarding_steps') }}

),

user_daily_activity as (

    select * from {{ ref('int_user_daily_activity') }}

),

edge_day_events as (

    select * from {{ ref('int_user_edge_day_events') }}

),

last_activity as (

    select
        user_id,
        max(last_event_at) as last_active_at

    from user_daily_activity
    group by user_id

),

-- tracked events in (T - 7d, T] and in (T - 14d, T - 7d]: whole days from the daily activity,
-- and the days that T - 7d and T - 14d cut through from their events (int_user_edge_day_events)
recent_whole_days as (

    select
        user_id,
        sum(case when activity_date > {{ day_7 }} then event_count else 0 end) as events_last_7d,
        sum(case when activity_date < {{ day_7 }} then event_count else 0 end) as events_prev_7d

    from user_daily_activity
    where activity_date > {{ day_14 }}
      and activity_date <> {{ day_7 }}
    group by user_id

),

recent_cut_days as (

    select
        user_id,
        sum(case when occurred_at > {{ shift_hours(t, -7 * 24) }} then 1 else 0 end)
            as events_last_7d,
        sum(case when occurred_at <= {{ shift_hours(t, -7 * 24) }} then 1 else 0 end)
            as events_prev_7d

    from edge_day_events
    where activity_date in ({{ day_7 }}, {{ day_14 }})
      and occurred_at > {{ shift_hours(t, -14 * 24) }}
    group by user_id

),

recent_activity as (

    select
        user_id,
        sum(events_last_7d) as events_last_7d,
        sum(events_prev_7d) as events_prev_7d

    from (
        select * from recent_whole_days
        union all
        select * from recent_cut_days
    ) as recent_parts
    group by user_id

),

progress as (

    select
        onboarding_steps.*,
        {{ steps_completed_sql() }} as steps_completed,
        greatest(
        {%- for step in onboarding_steps() %}
            step_{{ loop.index }}_at{% if not loop.last %},{% endif %}
        {%- endfor %}
        ) as last_step_at,
        {{ is_converted_sql('signed_up_at') }} as is_converted,
        {{ is_started_within_window_sql('signed_up_at') }} as is_started_within_window,
        signed_up_at <= {{ shift_days(t, -var('conversion_window_days')) }} as is_mature

    from onboarding_steps

),

joined as (

    select
        progress.*,
        last_activity.last_active_at,
        coalesce(recent_activity.events_last_7d, 0) as events_last_7d,
        coalesce(recent_activity.events_prev_7d, 0) as events_prev_7d

    from progress
    left join last_activity on progress.user_id = last_activity.user_id
    left join recent_activity on progress.user_id = recent_activity.user_id

),

final as (

    select
        user_id,
        first_event_at,
        signup_event_at,
        signed_up_at,
        {%- for step in onboarding_steps() %}
        step_{{ loop.index }}_at,
        {%- endfor %}
        cast(steps_completed as integer) as steps_completed,
        last_step_at,
        steps_completed >= 1 as is_onboarding_started,
        steps_completed = {{ onboarding_steps() | length }} as is_onboarding_completed,
        is_converted,
        is_started_within_window,
        is_mature,
        last_active_at,
        cast(events_last_7d as integer) as events_last_7d,
        cast(events_prev_7d as integer) as events_prev_7d,
        coalesce(last_active_at <= {{ shift_days(t, -var('inactive_after_days')) }}, true) as is_inactive,
        case
            when greatest(last_active_at, signed_up_at) <= {{ shift_days(t, -var('lapsed_after_days')) }}
                then 'lapsed'
            when greatest(last_active_at, signed_up_at) <= {{ shift_days(t, -var('inactive_after_days')) }}
                then 'dormant'
            when steps_completed = {{ onboarding_steps() | length }} then 'activated'
            when steps_completed >= 1 then 'onboarding'
            else 'new'
        end as lifecycle_stage

    from joined

)

select * from final
