{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='event_id',
        on_schema_change='fail'
    )
}}
-- Every identify call with the traits the pipeline uses already extracted: the compact input of
-- int_user_latest_traits, so that a run neither scans every event nor parses every traits JSON
-- again. Identify calls are a small share of the events; they are kept one row each (not
-- pre-aggregated) because "the latest value up to as_of" depends on as_of. Independent of
-- as_of and not stitched (stitching happens downstream). Incremental: a run adds the identify
-- calls ingested after the high-water mark minus late_data_lookback_hours (re-read rows replace
-- themselves: delete+insert on event_id).
with segment_identifies as (

    select * from {{ ref('stg_segment__identifies') }}

),

{% if is_incremental() %}

high_water_mark as (

    select
        {{ reload_ingested_after('ingested_at') }} as reload_ingested_after

    from {{ this }}

),

new_identifies as (

    select segment_identifies.*
    from segment_identifies
    cross join high_water_mark
    where segment_identifies.ingested_at > high_water_mark.reload_ingested_after

),

{% else %}

new_identifies as (

    select * from segment_identifies

),

{% endif %}

final as (

    select
        event_id,
        user_id,
        anonymous_id,
        occurred_at,
        email,
        name,
        timezone,
        is_admin,
        trait_created_at,
        ingested_at

    from new_identifies

)

select * from final
