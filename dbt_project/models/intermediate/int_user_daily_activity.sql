-- Tracked activity per user per UTC day, up to as_of. Complete days come from the incremental
-- identity rollup, stitched to users through int_identity_map; as_of's own day is recounted
-- from its events (int_user_edge_day_events) so that nothing after as_of is counted. One row
-- per day with at least one track event (any track event is activity).
with daily_activity_by_identity as (

    select * from {{ ref('int_identity_daily_activity') }}

),

identity_map as (

    select * from {{ ref('int_identity_map') }}

),

edge_day_events as (

    select * from {{ ref('int_user_edge_day_events') }}

),

completed_days as (

    select
        case
            when daily_activity_by_identity.identity_type = 'user'
                then daily_activity_by_identity.identity_id
            else identity_map.user_id
        end as user_id,
        daily_activity_by_identity.activity_date,
        daily_activity_by_identity.event_count,
        daily_activity_by_identity.first_event_at,
        daily_activity_by_identity.last_event_at

    from daily_activity_by_identity
    left join identity_map
        on daily_activity_by_identity.identity_type = 'anonymous'
        and daily_activity_by_identity.identity_id = identity_map.anonymous_id
    where daily_activity_by_identity.activity_date < {{ as_of_date() }}

),

as_of_day as (

    select
        user_id,
        activity_date,
        count(*) as event_count,
        min(occurred_at) as first_event_at,
        max(occurred_at) as last_event_at

    from edge_day_events
    where activity_date = {{ as_of_date() }}
    group by user_id, activity_date

),

unioned as (

    select * from completed_days
    where user_id is not null

    union all

    select * from as_of_day

),

final as (

    select
        user_id,
        activity_date,
        cast(sum(event_count) as bigint) as event_count,
        min(first_event_at) as first_event_at,
        max(last_event_at) as last_event_at

    from unioned
    group by user_id, activity_date

)

select * from final
