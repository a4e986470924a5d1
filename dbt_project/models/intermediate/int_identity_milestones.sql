{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['identity_type', 'identity_id'],
        on_schema_change='fail'
    )
}}
-- The first moments of every identity (user_id, or anonymous_id for events without one): its
-- first event, first signup event and first occurrence of each onboarding step (vars
-- signup_event and onboarding_steps). Every column is a minimum over the identity's events, so
-- it is independent of as_of (a first moment after as_of means none by as_of) and keyed by raw
-- identity, so identity stitching happens downstream (int_user_onboarding_steps) and never
-- invalidates stored rows. Incremental: a run reads only rows ingested after the high-water mark
-- minus late_data_lookback_hours and merges their minimums with the stored ones (re-reading a
-- row is harmless; a late event with an old occurred_at lowers the minimum).
{%- set moments = ['first_event_at', 'signup_event_at'] %}
{%- for step in onboarding_steps() %}
    {%- do moments.append('step_' ~ loop.index ~ '_at') %}
{%- endfor %}
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

new_milestones as (

    select
        identity_type,
        identity_id,
        min(occurred_at) as first_event_at,
        min(case when is_tracked and event_name = {{ sql_string(var('signup_event')) }} then occurred_at end)
            as signup_event_at,
        {%- for step in onboarding_steps() %}
        min(case when is_tracked and event_name = {{ sql_string(step) }} then occurred_at end)
            as step_{{ loop.index }}_at,
        {%- endfor %}
        max(ingested_at) as last_ingested_at

    from new_events
    group by identity_type, identity_id

),

{% if is_incremental() %}

candidate_milestones as (

    select * from new_milestones

    union all

    -- the stored moments of every identity with new events
    select
        stored.identity_type,
        stored.identity_id,
        {%- for moment in moments %}
        stored.{{ moment }},
        {%- endfor %}
        stored.last_ingested_at

    from {{ this }} as stored
    inner join new_milestones
        on stored.identity_type = new_milestones.identity_type
        and stored.identity_id = new_milestones.identity_id

),

final as (

    select
        identity_type,
        identity_id,
        {%- for moment in moments %}
        min({{ moment }}) as {{ moment }},
        {%- endfor %}
        max(last_ingested_at) as last_ingested_at

    from candidate_milestones
    group by identity_type, identity_id

)

{% else %}

final as (

    select * from new_milestones

)

{% endif %}

select * from final
