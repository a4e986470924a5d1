-- One row per enrollment in a sequence (sequence, user, enrollment key) found in the ledger:
-- the user's arm, and whether and when the sequence's goal was reached within its window.
-- fct_sequence_experiments and fct_message_performance both count conversions from here.
{%- set goals = sequence_goals() %}
{%- set holdout_percent = holdout_percent_by_sequence() %}
{%- set activity_goals = [] %}
{%- for sequence_id, goal in goals | dictsort if goal['goal'] == 'activity' %}
    {%- do activity_goals.append((sequence_id, goal['condition'])) %}
{%- endfor %}
with sends as (

    select * from {{ ref('stg_messaging__sends') }}

),

users as (

    select * from {{ ref('dim_users') }}

),

user_events as (

    select * from {{ ref('int_user_events') }}

),

sequence_goals as (

    {%- for sequence_id, goal in goals | dictsort %}
    select
        cast('{{ sequence_id }}' as varchar) as sequence_id,
        cast('{{ goal["goal"] }}' as varchar) as goal,
        cast({{ goal["within_days"] | int }} as integer) as within_days,
        cast({{ holdout_percent.get(sequence_id, "null") }} as float8) as holdout_percent
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

enrollments as (

    select
        sequence_id,
        user_id,
        enrollment_key,
        min(variant) as variant,
        min(planned_at) as planned_at

    from sends
    group by sequence_id, user_id, enrollment_key

),

enrollment_goals as (

    select
        enrollments.*,
        sequence_goals.goal,
        sequence_goals.within_days,
        sequence_goals.holdout_percent

    from enrollments
    inner join sequence_goals on enrollments.sequence_id = sequence_goals.sequence_id

),

-- Activity goals need the tracked events of the users enrolled in such a sequence, from 14
-- days before their earliest enrollment on; only those are read.
activity_users as (

    select distinct user_id
    from enrollment_goals
    where goal = 'activity'

),

activity_span as (

    select {{ shift_hours('min(enrollment_key)', -14 * 24) }} as events_after
    from enrollment_goals
    where goal = 'activity'

),

tracked_events as (

    select
        user_events.user_id,
        user_events.occurred_at

    from user_events
    cross join activity_span
    inner join activity_users on user_events.user_id = activity_users.user_id
    where user_events.is_tracked
      and user_events.occurred_at > activity_span.events_after

),

onboarding_moments as (

    select
        user_id,
        case when steps_completed = 4 then last_step_at end as onboarding_completed_at,
        least(
            {%- for step in onboarding_steps() %}
            step_{{ loop.index }}_at{% if not loop.last %},{% endif %}
            {%- endfor %}
        ) as onboarding_started_at

    from users

),

-- Activity goals are conditions over the user's tracked events in the 7 days before a moment
-- and the 7 before those (as int_user_lifecycle counts them at as_of). They are evaluated at
-- every tracked event in the window: a user who goes silent never counts as having recovered.
activity_checkpoints as (

    select
        enrollment_goals.sequence_id,
        enrollment_goals.user_id,
        enrollment_goals.enrollment_key,
        tracked_events.occurred_at as checkpoint_at

    from enrollment_goals
    inner join tracked_events
        on enrollment_goals.user_id = tracked_events.user_id
        and tracked_events.occurred_at >= enrollment_goals.enrollment_key
        and {{ seconds_between('enrollment_goals.enrollment_key', 'tracked_events.occurred_at') }}
            <= enrollment_goals.within_days * 86400.0
    where enrollment_goals.goal = 'activity'

),

checkpoint_activity as (

    select
        activity_checkpoints.sequence_id,
        activity_checkpoints.user_id,
        activity_checkpoints.enrollment_key,
        activity_checkpoints.checkpoint_at,
        sum(
            case
                when {{ seconds_between('tracked_events.occurred_at', 'activity_checkpoints.checkpoint_at') }} < 7 * 86400.0
                    then 1 else 0
            end
        ) as events_last_7d,
        sum(
            case
                when {{ seconds_between('tracked_events.occurred_at', 'activity_checkpoints.checkpoint_at') }} >= 7 * 86400.0
                    then 1 else 0
            end
        ) as events_prev_7d

    from activity_checkpoints
    inner join tracked_events
        on activity_checkpoints.user_id = tracked_events.user_id
        and tracked_events.occurred_at <= activity_checkpoints.checkpoint_at
        and tracked_events.occurred_at > {{ shift_hours('activity_checkpoints.checkpoint_at', -14 * 24) }}
    group by
        activity_checkpoints.sequence_id,
        activity_checkpoints.user_id,
        activity_checkpoints.enrollment_key,
        activity_checkpoints.checkpoint_at

),

checkpoint_states as (

    select
        *,
        events_last_7d = 0 as is_inactive

    from checkpoint_activity

),

activity_goal_moments as (

    select
        sequence_id,
        user_id,
        enrollment_key,
        min(checkpoint_at) as goal_reached_at

    from checkpoint_states
    where
    {%- for sequence_id, condition in activity_goals %}
        (sequence_id = '{{ sequence_id }}' and {{ condition }}){% if not loop.last %} or{% endif %}
    {%- else %}
        1 = 0
    {%- endfor %}
    group by sequence_id, user_id, enrollment_key

),

goal_moments as (

    select
        enrollment_goals.*,
        case enrollment_goals.goal
            when 'onboarding_completed' then onboarding_moments.onboarding_completed_at
            when 'onboarding_started' then onboarding_moments.onboarding_started_at
            when 'activity' then activity_goal_moments.goal_reached_at
        end as goal_reached_at

    from enrollment_goals
    left join onboarding_moments on enrollment_goals.user_id = onboarding_moments.user_id
    left join activity_goal_moments
        on enrollment_goals.sequence_id = activity_goal_moments.sequence_id
        and enrollment_goals.user_id = activity_goal_moments.user_id
        and enrollment_goals.enrollment_key = activity_goal_moments.enrollment_key

),

final as (

    select
        cast(sequence_id as varchar) as sequence_id,
        cast(user_id as varchar) as user_id,
        enrollment_key,
        cast(variant as varchar) as variant,
        planned_at,
        cast(goal as varchar) as goal,
        within_days,
        holdout_percent,
        goal_reached_at,
        coalesce(
            goal_reached_at is not null
            and {{ seconds_between('enrollment_key', 'goal_reached_at') }} >= 0
            and {{ seconds_between('enrollment_key', 'goal_reached_at') }} <= within_days * 86400.0,
            false
        ) as is_converted

    from goal_moments

)

select * from final
