-- Identify calls from raw.events, with the traits the pipeline uses extracted as typed columns.
-- Values are kept as sent (an invalid time zone stays here; int_user_latest_traits judges it).
with source as (

    select * from {{ source('raw', 'events') }}

),

renamed as (

    select
        event_id,
        event_type,
        nullif(trim(user_id), '') as user_id,
        nullif(trim(anonymous_id), '') as anonymous_id,
        cast(occurred_at as {{ type_timestamptz() }}) as occurred_at,
        cast(received_at as {{ type_timestamptz() }}) as received_at,
        nullif(trim({{ json_text('traits', 'email') }}), '') as email,
        nullif(trim({{ json_text('traits', 'name') }}), '') as name,
        {{ json_text('traits', 'timezone') }} as timezone,
        {{ text_to_boolean(json_text('traits', 'is_admin')) }} as is_admin,
        {{ try_cast_timestamptz(json_text('traits', 'created_at')) }} as trait_created_at,
        traits,
        context,
        source_file,
        cast(ingested_at as {{ type_timestamptz() }}) as ingested_at

    from source
    where event_type = 'identify'

),

final as (

    select * from renamed

)

select * from final
