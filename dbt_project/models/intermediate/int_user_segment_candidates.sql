-- One row per (user, nurture segment) whose rule the user meets at T = as_of, with the rule's
-- priority and qualified_at (the enrollment key), exactly as docs/architecture.md §5. The only place the
-- segment rules live: user_segments keeps each user's highest-priority row and
-- dim_users.nurture_segment reads user_segments, so the two cannot disagree.
-- Boundaries are inclusive ("<= T - 30d"): exactly 30 days qualifies.
{%- set t = as_of() %}
with user_lifecycle as (

    select * from {{ ref('int_user_lifecycle') }}

),

lapsed as (

    select
        user_id,
        'lapsed' as segment,
        1 as segment_priority,
        {{ shift_days('last_active_at', var('lapsed_after_days')) }} as qualified_at

    from user_lifecycle
    where last_active_at <= {{ shift_days(t, -var('lapsed_after_days')) }}

),

dormant as (

    select
        user_id,
        'dormant' as segment,
        2 as segment_priority,
        {{ shift_days('last_active_at', var('dormant_after_days')) }} as qualified_at

    from user_lifecycle
    where is_onboarding_completed
      and last_active_at <= {{ shift_days(t, -var('dormant_after_days')) }}

),

stalled as (

    select
        user_id,
        'stalled' as segment,
        3 as segment_priority,
        {{ shift_hours('last_step_at', var('stalled_after_hours')) }} as qualified_at

    from user_lifecycle
    where is_onboarding_started
      and not is_onboarding_completed
      and last_step_at <= {{ shift_hours(t, -var('stalled_after_hours')) }}

),

never_started as (

    select
        user_id,
        'never_started' as segment,
        4 as segment_priority,
        {{ shift_hours('signed_up_at', var('never_started_after_hours')) }} as qualified_at

    from user_lifecycle
    where steps_completed = 0
      and signed_up_at <= {{ shift_hours(t, -var('never_started_after_hours')) }}

),

declining as (

    select
        user_id,
        'declining' as segment,
        5 as segment_priority,
        {{ utc_week_start(t) }} as qualified_at

    from user_lifecycle
    where events_prev_7d >= {{ var('declining_min_prev_events') }}
      and events_last_7d < {{ var('declining_ratio') }} * events_prev_7d

),

unioned as (

    select * from lapsed
    union all
    select * from dormant
    union all
    select * from stalled
    union all
    select * from never_started
    union all
    select * from declining

),

final as (

    select
        user_id,
        cast(segment as varchar) as segment,
        cast(segment_priority as integer) as segment_priority,
        qualified_at

    from unioned

)

select * from final
