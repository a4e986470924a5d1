-- The send ledger (messaging.sends), typed; one row per ledger row.
with source as (

    select * from {{ source('messaging', 'sends') }}

),

renamed as (

    select
        send_id,
        user_id,
        sequence_id,
        step_id,
        cast(enrollment_key as {{ type_timestamptz() }}) as enrollment_key,
        status,
        status_reason,
        variant,
        flag_key,
        provider,
        provider_message_id,
        attempts,
        (sent_at is not null or status = 'sent') as is_sent,
        cast(planned_at as {{ type_timestamptz() }}) as planned_at,
        {{ utc_date('planned_at') }} as planned_date,
        cast(sent_at as {{ type_timestamptz() }}) as sent_at,
        cast(updated_at as {{ type_timestamptz() }}) as updated_at

    from source

),

final as (

    select * from renamed

)

select * from final
