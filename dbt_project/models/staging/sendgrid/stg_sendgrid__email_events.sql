-- SendGrid Event Webhook events (raw.email_events), typed; one row per sg_event_id.
with source as (

    select * from {{ source('sendgrid', 'email_events') }}

),

renamed as (

    select
        sg_event_id,
        lower(trim(event)) as event,
        nullif(trim(send_id), '') as send_id,
        email,
        sg_message_id,
        reason,
        cast(occurred_at as {{ type_timestamptz() }}) as occurred_at,
        cast(ingested_at as {{ type_timestamptz() }}) as ingested_at

    from source

),

final as (

    select * from renamed

)

select * from final
