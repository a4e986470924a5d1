-- One row per funnel step (0 = signup, then steps 1..4 in order) over the mature cohort
-- (signed_up_at <= as_of - conversion_window_days). A user reaches step k when steps 1..k are
-- all done within conversion_window_days of signup, so the funnel only narrows and its last
-- step's share of signups equals the onboarding conversion rate.
{%- set steps = onboarding_steps() %}
with user_lifecycle as (

    select * from {{ ref('int_user_lifecycle') }}

),

mature_cohort as (

    select * from user_lifecycle
    where is_mature

),

funnel_steps as (

    select 0 as step_number, {{ sql_string(var('signup_event')) }} as step_name
    {%- for step in steps %}
    union all
    select {{ loop.index }} as step_number, {{ sql_string(step) }} as step_name
    {%- endfor %}

),

step_reached as (

    select 0 as step_number, user_id, signed_up_at, signed_up_at as reached_at
    from mature_cohort
    {%- for step in steps %}
    {%- set step_number = loop.index %}

    union all

    select
        {{ step_number }} as step_number,
        user_id,
        signed_up_at,
        greatest({% for k in range(1, step_number + 1) %}step_{{ k }}_at{% if not loop.last %}, {% endif %}{% endfor %}) as reached_at
    from mature_cohort
    where {% for k in range(1, step_number + 1) -%}
        step_{{ k }}_at <= {{ conversion_window_end('signed_up_at') }}{% if not loop.last %} and {% endif %}
    {%- endfor %}
    {%- endfor %}

),

step_totals as (

    select
        step_number,
        count(*) as users_reached,
        {{ median(seconds_between('signed_up_at', 'reached_at') ~ ' / 3600.0') }} as median_hours_from_signup

    from step_reached
    group by step_number

),

cohort_size as (

    select count(*) as mature_signups from mature_cohort

),

joined as (

    select
        funnel_steps.step_number,
        funnel_steps.step_name,
        coalesce(step_totals.users_reached, 0) as users_reached,
        cohort_size.mature_signups,
        step_totals.median_hours_from_signup

    from funnel_steps
    cross join cohort_size
    left join step_totals on funnel_steps.step_number = step_totals.step_number

),

final as (

    select
        cast(step_number as integer) as step_number,
        cast(step_name as varchar) as step_name,
        cast(users_reached as integer) as users_reached,
        case when mature_signups > 0
            then cast(users_reached as float8) / mature_signups
        end as pct_of_signups,
        case when lag(users_reached) over (order by step_number) > 0
            then cast(users_reached as float8) / lag(users_reached) over (order by step_number)
        end as pct_of_previous_step,
        cast(median_hours_from_signup as float8) as median_hours_from_signup

    from joined

)

select * from final
