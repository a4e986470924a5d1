-- One row per user known at as_of: what the user sees about themself. Progress through the four
-- onboarding steps, recent activity (UTC days, up to as_of) and how they compare with the users
-- who signed up in the same ISO week.
{%- set steps = onboarding_steps() %}
with users as (

    select * from {{ ref('dim_users') }}

),

user_daily_activity as (

    select * from {{ ref('int_user_daily_activity') }}

),

recent_active_days as (

    -- the 7 UTC days ending with as_of's day
    select
        user_id,
        count(*) as active_days_last_7

    from user_daily_activity
    where activity_date > {{ dbt.dateadd('day', -7, as_of_date()) }}
    group by user_id

),

recently_active_users as (

    -- only they can have a current streak (one reaching as_of's day or the day before)
    select distinct user_id
    from user_daily_activity
    where activity_date >= {{ dbt.dateadd('day', -1, as_of_date()) }}

),

activity_islands as (

    -- consecutive active days share (day number - row number)
    select
        user_daily_activity.user_id,
        user_daily_activity.activity_date,
        {{ dbt.datediff("cast('1970-01-01' as date)", 'user_daily_activity.activity_date', 'day') }}
            - row_number() over (
                partition by user_daily_activity.user_id
                order by user_daily_activity.activity_date
            ) as island_id

    from user_daily_activity
    inner join recently_active_users
        on user_daily_activity.user_id = recently_active_users.user_id

),

streaks as (

    select
        user_id,
        max(activity_date) as streak_last_day,
        count(*) as streak_days

    from activity_islands
    group by user_id, island_id

),

current_streaks as (

    -- a streak is current when it reaches as_of's day or the day before (today not over yet)
    select
        user_id,
        streak_days as current_streak_days

    from streaks
    where streak_last_day >= {{ dbt.dateadd('day', -1, as_of_date()) }}

),

final as (

    select
        cast(users.user_id as varchar) as user_id,
        users.steps_completed,
        cast(
            case
            {%- for step in steps %}
                when users.step_{{ loop.index }}_at is null then {{ sql_string(step) }}
            {%- endfor %}
            end
        as varchar) as next_step_name,
        cast(100.0 * users.steps_completed / {{ steps | length }} as float8) as percent_complete,
        cast(coalesce(recent_active_days.active_days_last_7, 0) as integer) as active_days_last_7,
        cast(coalesce(current_streaks.current_streak_days, 0) as integer) as current_streak_days,
        cast(
            100.0 * percent_rank() over (
                partition by {{ utc_week_start('users.signed_up_at') }}
                order by users.steps_completed
            )
        as float8) as progress_percentile

    from users
    left join recent_active_days on users.user_id = recent_active_days.user_id
    left join current_streaks on users.user_id = current_streaks.user_id

)

select * from final
