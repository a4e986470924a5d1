{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='anonymous_id',
        on_schema_change='fail'
    )
}}
-- The first link of every anonymous_id: the earliest event (by occurred_at, then event_id) that
-- carries both the anonymous_id and a user_id. Independent of as_of: int_identity_map keeps the
-- links made by as_of, which is exact because the first link up to as_of is the first link
-- overall whenever that one happened by as_of. Incremental: a run reads only rows ingested after
-- the high-water mark minus late_data_lookback_hours, and merges their earliest link with the
-- stored one for each anonymous_id they touch (the earliest of two earliest links is the
-- earliest, so re-reading a row is harmless and a late link with an old occurred_at wins).
with identity_events as (

    select * from {{ ref('int_identity_events') }}

),

{% if is_incremental() %}

high_water_mark as (

    select
        {{ reload_ingested_after() }} as reload_ingested_after

    from {{ this }}

),

new_events as (

    select identity_events.*
    from identity_events
    cross join high_water_mark
    where identity_events.ingested_at > high_water_mark.reload_ingested_after

),

{% else %}

new_events as (

    select * from identity_events

),

{% endif %}

new_links as (

    select
        anonymous_id,
        user_id,
        occurred_at as linked_at,
        event_id as link_event_id,
        ingested_at as last_ingested_at

    from new_events
    where anonymous_id is not null
      and user_id is not null

),

{% if is_incremental() %}

candidate_links as (

    select * from new_links

    union all

    -- the stored first link of every anonymous_id that has a new link
    select
        stored.anonymous_id,
        stored.user_id,
        stored.linked_at,
        stored.link_event_id,
        stored.last_ingested_at

    from {{ this }} as stored
    where stored.anonymous_id in (select anonymous_id from new_links)

),

{% else %}

candidate_links as (

    select * from new_links

),

{% endif %}

final as (

    select
        anonymous_id,
        {{ earliest_non_null('user_id', ['linked_at', 'link_event_id']) }} as user_id,
        min(linked_at) as linked_at,
        {{ earliest_non_null('link_event_id', ['linked_at', 'link_event_id']) }} as link_event_id,
        max(last_ingested_at) as last_ingested_at

    from candidate_links
    group by anonymous_id

)

select * from final
