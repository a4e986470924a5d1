-- anonymous_id -> user_id, from every event up to as_of that carries both ids (identify or any
-- other). When one device was linked to several users, the first link (by occurred_at, then
-- event_id) wins, so pre-signup browsing goes to the user who signed up on that device. Read
-- from the incremental first-link rollup: its link is the first up to as_of whenever it
-- happened by as_of, and otherwise the device had no link by as_of.
with first_links as (

    select * from {{ ref('int_identity_first_links') }}

),

final as (

    select
        anonymous_id,
        user_id,
        linked_at

    from first_links
    where linked_at <= {{ as_of() }}

)

select * from final
