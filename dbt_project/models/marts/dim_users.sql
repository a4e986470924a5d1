-- One row per user known at as_of: identity, latest traits, onboarding progress, activity and
-- the one nurture segment the user holds (from user_segments).
with user_lifecycle as (

    select * from {{ ref('int_user_lifecycle') }}

),

user_latest_traits as (

    select * from {{ ref('int_user_latest_traits') }}

),

user_segments as (

    select * from {{ ref('user_segments') }}

),

final as (

    select
        cast(user_lifecycle.user_id as varchar) as user_id,
        cast(user_latest_traits.email as varchar) as email,
        cast(user_latest_traits.name as varchar) as name,
        cast(coalesce(user_latest_traits.timezone, 'UTC') as varchar) as timezone,
        coalesce(user_latest_traits.has_valid_timezone, false) as has_valid_timezone,
        coalesce(user_latest_traits.is_admin, false) as is_admin,
        user_lifecycle.signed_up_at,
        {%- for step in onboarding_steps() %}
        user_lifecycle.step_{{ loop.index }}_at,
        {%- endfor %}
        user_lifecycle.steps_completed,
        user_lifecycle.last_step_at,
        user_lifecycle.is_onboarding_started,
        user_lifecycle.is_onboarding_completed,
        user_lifecycle.is_converted,
        user_lifecycle.last_active_at,
        user_lifecycle.events_last_7d,
        user_lifecycle.events_prev_7d,
        user_lifecycle.is_inactive,
        cast(user_lifecycle.lifecycle_stage as varchar) as lifecycle_stage,
        cast(user_segments.segment as varchar) as nurture_segment

    from user_lifecycle
    left join user_latest_traits on user_lifecycle.user_id = user_latest_traits.user_id
    left join user_segments on user_lifecycle.user_id = user_segments.user_id

)

select * from final
