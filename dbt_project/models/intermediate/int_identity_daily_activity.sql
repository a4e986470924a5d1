{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['identity_type', 'identity_id', 'activity_date'],
        on_schema_change='fail'
    )
}}
-- Tracked activity per identity (user_id, or anonymous_id for events without one) per UTC day.
-- This is where the cost grows with events, so it is incremental: a run recomputes only the
-- identity-days that received rows ingested after the high-water mark minus
-- late_data_lookback_hours (a late event with an old occurred_at has a new ingested_at, so its
-- day is recomputed), reading again only the events of those days' span, and replaces them
-- (delete+insert). Keyed by raw identity rather than by resolved user so that a later identify
-- never invalidates stored rows: identity stitching happens downstream, in
-- int_user_daily_activity. Independent of as_of.
-- (The event CTEs are read twice by an incremental run; "not materialized" lets each read keep
-- its own filter instead of the engine copying every event first.)
with identity_events as not materialized (

    select * from {{ ref('int_identity_events') }}

),

tracked_events as not materialized (

    select * from identity_events
    where is_tracked

),

{% if is_incremental() %}

high_water_mark as (

    select
        {{ reload_ingested_after() }} as reload_ingested_after

    from {{ this }}

),

changed_identity_days as (

    select distinct
        tracked_events.identity_type,
        tracked_events.identity_id,
        tracked_events.activity_date

    from tracked_events
    cross join high_water_mark
    where tracked_events.ingested_at > high_water_mark.reload_ingested_after

),

-- Only events of the changed days' span are read again: a range on occurred_at, which the
-- engine applies while scanning (usually the last few days; a late event widens it).
changed_span as (

    select
        {{ utc_midnight('min(activity_date)') }} as reload_from,
        {{ shift_hours(utc_midnight('max(activity_date)'), 24) }} as reload_until

    from changed_identity_days

),

events_to_aggregate as (

    select tracked_events.*
    from tracked_events
    cross join changed_span
    inner join changed_identity_days
        on tracked_events.identity_type = changed_identity_days.identity_type
        and tracked_events.identity_id = changed_identity_days.identity_id
        and tracked_events.activity_date = changed_identity_days.activity_date
    where tracked_events.occurred_at >= changed_span.reload_from
      and tracked_events.occurred_at < changed_span.reload_until

),

{% else %}

events_to_aggregate as (

    select * from tracked_events

),

{% endif %}

final as (

    select
        identity_type,
        identity_id,
        activity_date,
        count(*) as event_count,
        min(occurred_at) as first_event_at,
        max(occurred_at) as last_event_at,
        max(ingested_at) as last_ingested_at

    from events_to_aggregate
    group by identity_type, identity_id, activity_date

)

select * from final
