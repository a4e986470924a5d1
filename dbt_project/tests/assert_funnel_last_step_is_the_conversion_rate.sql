-- The funnel's last step over the mature cohort is the onboarding conversion of kpi_daily at as_of.
with funnel as (

    select * from {{ ref('fct_onboarding_funnel') }}

),

kpi_daily as (

    select * from {{ ref('kpi_daily') }}

),

funnel_ends as (

    select
        max(case when step_number = 0 then users_reached end) as mature_signups,
        max(case when step_number = {{ onboarding_steps() | length }} then users_reached end) as converted_users

    from funnel

),

headline as (

    select mature_signups, converted_users
    from kpi_daily
    where date = {{ as_of_date() }}

)

select funnel_ends.*, headline.mature_signups as kpi_mature_signups, headline.converted_users as kpi_converted_users
from funnel_ends
cross join headline
where funnel_ends.mature_signups <> headline.mature_signups
   or funnel_ends.converted_users <> headline.converted_users
