-- One row per user with at least one identify up to as_of: the latest non-null value of each
-- trait (by occurred_at, then event_id). A time zone that is not an IANA name the engine knows
-- (e.g. 'Mars/Olympus', 'GMT+25', '') falls back to 'UTC' and is flagged.
{%- set traits = ['email', 'name', 'timezone', 'is_admin', 'trait_created_at'] %}
with segment_identifies as (

    select * from {{ ref('stg_segment__identifies') }}

),

identity_map as (

    select * from {{ ref('int_identity_map') }}

),

valid_timezones as (

    select distinct name as timezone_name from {{ timezone_names_relation() }}

),

identifies as (

    select
        coalesce(segment_identifies.user_id, identity_map.user_id) as user_id,
        segment_identifies.event_id,
        segment_identifies.occurred_at,
        {%- for trait in traits %}
        segment_identifies.{{ trait }}{% if not loop.last %},{% endif %}
        {%- endfor %}

    from segment_identifies
    left join identity_map
        on segment_identifies.user_id is null
        and segment_identifies.anonymous_id = identity_map.anonymous_id
    where segment_identifies.occurred_at <= {{ as_of() }}

),

identified_users as (

    select
        user_id,
        max(occurred_at) as traits_updated_at

    from identifies
    where user_id is not null
    group by user_id

),

{% for trait in traits %}
latest_{{ trait }} as (

    select user_id, {{ trait }}
    from (
        select
            user_id,
            {{ trait }},
            row_number() over (partition by user_id order by occurred_at desc, event_id desc) as recency_rank
        from identifies
        where user_id is not null
          and {{ trait }} is not null
    ) as ranked
    where recency_rank = 1

),
{% endfor %}

joined as (

    select
        identified_users.user_id,
        latest_email.email,
        latest_name.name,
        latest_timezone.timezone as reported_timezone,
        valid_timezones.timezone_name is not null as has_valid_timezone,
        latest_is_admin.is_admin,
        latest_trait_created_at.trait_created_at,
        identified_users.traits_updated_at

    from identified_users
    {%- for trait in traits %}
    left join latest_{{ trait }} on identified_users.user_id = latest_{{ trait }}.user_id
    {%- endfor %}
    left join valid_timezones on latest_timezone.timezone = valid_timezones.timezone_name

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
