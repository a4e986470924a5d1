{{ config(materialized='view') }}
-- Every event up to as_of attributed to a user: its own user_id, else the user its anonymous_id
-- was linked to (int_identity_map). Anonymous events never linked are dropped. A view: consumers
-- filter it (by event name, by time window) before aggregating.
with identity_events as (

    select * from {{ ref('int_identity_events') }}

),

identity_map as (

    select * from {{ ref('int_identity_map') }}

),

events_until_as_of as (

    select * from identity_events
    where occurred_at <= {{ as_of() }}

),

resolved as (

    select
        events_until_as_of.event_id,
        coalesce(events_until_as_of.user_id, identity_map.user_id) as user_id,
        events_until_as_of.user_id is not null as is_identified,
        events_until_as_of.anonymous_id,
        events_until_as_of.event_type,
        events_until_as_of.event_name,
        events_until_as_of.is_tracked,
        events_until_as_of.occurred_at,
        events_until_as_of.activity_date

    from events_until_as_of
    left join identity_map
        on events_until_as_of.user_id is null
        and events_until_as_of.anonymous_id = identity_map.anonymous_id

),

final as (

    select * from resolved
    where user_id is not null

)

select * from final
