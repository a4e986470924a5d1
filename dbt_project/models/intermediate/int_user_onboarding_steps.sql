-- One row per user known at as_of: when they signed up and when they first did each of the four
-- onboarding steps (vars signup_event and onboarding_steps; first occurrence, up to as_of).
-- signed_up_at is the first signup event, else the user's first identified event (DESIGN §5).
with user_events as (

    select * from {{ ref('int_user_events') }}

),

milestones as (

    select
        user_id,
        min(case when is_identified then occurred_at end) as first_event_at,
        min(case when is_tracked and event_name = {{ sql_string(var('signup_event')) }} then occurred_at end)
            as signup_event_at,
        {%- for step in onboarding_steps() %}
        min(case when is_tracked and event_name = {{ sql_string(step) }} then occurred_at end)
            as step_{{ loop.index }}_at{% if not loop.last %},{% endif %}
        {%- endfor %}

    from user_events
    group by user_id

),

final as (

    select
        user_id,
        first_event_at,
        signup_event_at,
        coalesce(signup_event_at, first_event_at) as signed_up_at,
        {%- for step in onboarding_steps() %}
        step_{{ loop.index }}_at{% if not loop.last %},{% endif %}
        {%- endfor %}

    from milestones

)

select * from final
