-- One row per user with at least one identify up to as_of: the latest non-null value of each
-- trait (by occurred_at, then event_id). A time zone that is not an IANA name the engine knows
-- (e.g. 'Mars/Olympus', 'GMT+25', '') falls back to 'UTC' and is flagged. Reads the identify
-- calls from their incremental copy with the traits already extracted (int_identity_identifies).
{%- set traits = ['email', 'name', 'timezone', 'is_admin', 'trait_created_at'] %}
with identity_identifies as (

    select * from {{ ref('int_identity_identifies') }}

),

identity_map as (

    select * from {{ ref('int_identity_map') }}

),

valid_timezones as (

    select distinct name as timezone_name from {{ timezone_names_relation() }}

),

identifies as (

    select
        coalesce(identity_identifies.user_id, identity_map.user_id) as user_id,
        identity_identifies.event_id,
        identity_identifies.occurred_at,
        {%- for trait in traits %}
        identity_identifies.{{ trait }}{% if not loop.last %},{% endif %}
        {%- endfor %}

    from identity_identifies
    left join identity_map
        on identity_identifies.user_id is null
        and identity_identifies.anonymous_id = identity_map.anonymous_id
    where identity_identifies.occurred_at <= {{ as_of() }}

),

latest_traits as (

    select
        user_id,
        {%- for trait in traits %}
        {{ latest_non_null(trait, ['occurred_at', 'event_id']) }} as {{ trait }},
        {%- endfor %}
        max(occurred_at) as traits_updated_at

    from identifies
    where user_id is not null
    group by user_id

),

joined as (

    select
        latest_traits.user_id,
        latest_traits.email,
        latest_traits.name,
        latest_traits.timezone as reported_timezone,
        valid_timezones.timezone_name is not null as has_valid_timezone,
        latest_traits.is_admin,
        latest_traits.trait_created_at,
        latest_traits.traits_updated_at

    from latest_traits
    left join valid_timezones on latest_traits.timezone = valid_timezones.timezone_name

),

final as (

    select
        user_id,
        email,
        name,
        case when has_valid_timezone then reported_timezone else 'UTC' end as timezone,
        reported_timezone,
        has_valid_timezone,
        is_admin,
        trait_created_at,
        traits_updated_at

    from joined

)

select * from final
