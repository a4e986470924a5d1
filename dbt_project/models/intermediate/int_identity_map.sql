-- anonymous_id -> user_id, from every event up to as_of that carries both ids (identify or any
-- other). When one device was linked to several users, the first link (by occurred_at, then
-- event_id) wins, so pre-signup browsing goes to the user who signed up on that device.
with identity_events as (

    select * from {{ ref('int_identity_events') }}

),

links as (

    select
        anonymous_id,
        user_id,
        occurred_at,
        event_id,
        row_number() over (
            partition by anonymous_id
            order by occurred_at, event_id
        ) as link_rank

    from identity_events
    where anonymous_id is not null
      and user_id is not null
      and occurred_at <= {{ as_of() }}

),

final as (

    select
        anonymous_id,
        user_id,
        occurred_at as linked_at

    from links
    where link_rank = 1

)

select * from final
