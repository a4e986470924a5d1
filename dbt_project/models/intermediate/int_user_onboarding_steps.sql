-- One row per user known at as_of: when they signed up and when they first did each of the four
-- onboarding steps (vars signup_event and onboarding_steps; first occurrence, up to as_of).
-- signed_up_at is the first signup event, else the user's first identified event (docs/architecture.md §5).
-- Read from the per-identity first moments (int_identity_milestones), stitched to users through
-- int_identity_map: a first moment after as_of means none by as_of, so each is dropped when it
-- is after as_of before the user's minimum is taken. A user is known once an event carrying
-- their user_id happened by as_of (a linked device implies one: the link).
{%- set t = as_of() %}
{%- set moments = ['signup_event_at'] %}
{%- for step in onboarding_steps() %}
    {%- do moments.append('step_' ~ loop.index ~ '_at') %}
{%- endfor %}
with identity_milestones as (

    select * from {{ ref('int_identity_milestones') }}

),

identity_map as (

    select * from {{ ref('int_identity_map') }}

),

resolved as (

    select
        case
            when identity_milestones.identity_type = 'user' then identity_milestones.identity_id
            else identity_map.user_id
        end as user_id,
        -- identified events are the user's own (the signup fallback)
        case
            when identity_milestones.identity_type = 'user'
                and identity_milestones.first_event_at <= {{ t }}
                then identity_milestones.first_event_at
        end as first_event_at,
        {%- for moment in moments %}
        case
            when identity_milestones.{{ moment }} <= {{ t }} then identity_milestones.{{ moment }}
        end as {{ moment }}{% if not loop.last %},{% endif %}
        {%- endfor %}

    from identity_milestones
    left join identity_map
        on identity_milestones.identity_type = 'anonymous'
        and identity_milestones.identity_id = identity_map.anonymous_id

),

milestones as (

    select
        user_id,
        min(first_event_at) as first_event_at,
        {%- for moment in moments %}
        min({{ moment }}) as {{ moment }}{% if not loop.last %},{% endif %}
        {%- endfor %}

    from resolved
    where user_id is not null
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
    where first_event_at is not null

)

select * from final
