-- The tracked events, attributed to users as int_user_events does, of the three UTC days that
-- the activity windows of as_of cut through: as_of's own day (up to as_of), and the days of
-- as_of - 7d and as_of - 14d. Daily rollups cannot say which side of such a cut an event is on;
-- these few events can, so the per-user counts at as_of (int_user_daily_activity,
-- int_user_lifecycle) need no other event-level read. The days are selected by ranges on
-- occurred_at, which the engine applies while scanning.
{%- set t = as_of() %}
{%- set cut_days = [as_of_date(), utc_date(shift_days(t, -7)), utc_date(shift_days(t, -14))] %}
with user_events as (

    select * from {{ ref('int_user_events') }}

),

final as (

    select
        event_id,
        user_id,
        occurred_at,
        activity_date

    from user_events
    where is_tracked
      and (
        {%- for cut_day in cut_days %}
        (
            occurred_at >= {{ utc_midnight(cut_day) }}
            and occurred_at < {{ shift_hours(utc_midnight(cut_day), 24) }}
        ){% if not loop.last %} or{% endif %}
        {%- endfor %}
      )

)

select * from final
