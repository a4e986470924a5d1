{{ config(materialized='view') }}
-- Every event (track, page, identify) in one shape, keyed by the identity that sent it: the
-- user_id when the event carries one, else its anonymous_id. Independent of as_of, so the
-- incremental rollup built on it never depends on the clock. A view: it only reshapes columns.
with segment_events as (

    select * from {{ ref('stg_segment__events') }}

),

segment_identifies as (

    select * from {{ ref('stg_segment__identifies') }}

),

unioned as (

    select event_id, event_type, event_name, user_id, anonymous_id, occurred_at, ingested_at
    from segment_events

    union all

    select
        event_id,
        event_type,
        cast(null as {{ dbt.type_string() }}) as event_name,
        user_id,
        anonymous_id,
        occurred_at,
        ingested_at
    from segment_identifies

),

final as (

    select
        event_id,
        event_type,
        event_name,
        user_id,
        anonymous_id,
        case when user_id is not null then 'user' else 'anonymous' end as identity_type,
        coalesce(user_id, anonymous_id) as identity_id,
        event_type = 'track' as is_tracked,
        occurred_at,
        {{ utc_date('occurred_at') }} as activity_date,
        ingested_at

    from unioned
    where coalesce(user_id, anonymous_id) is not null

)

select * from final
