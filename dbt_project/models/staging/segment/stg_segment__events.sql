-- Track and page events from raw.events, renamed and cast; no joins, no identity resolution.
with source as (

    select * from {{ source('raw', 'events') }}

),

renamed as (

    select
        event_id,
        event_type,
        nullif(trim(event_name), '') as event_name,
        nullif(trim(user_id), '') as user_id,
        nullif(trim(anonymous_id), '') as anonymous_id,
        cast(occurred_at as {{ type_timestamptz() }}) as occurred_at,
        cast(received_at as {{ type_timestamptz() }}) as received_at,
        properties,
        context,
        source_file,
        cast(ingested_at as {{ type_timestamptz() }}) as ingested_at

    from source
    where event_type in ('track', 'page')

),

final as (

    select * from renamed

)

select * from final
