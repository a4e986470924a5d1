-- The last kpi_daily row (measured at as_of) must equal the headline KPIs computed per user in
-- dim_users. Returns the mismatching row, if any.
with users as (

    select * from {{ ref('dim_users') }}

),

kpi_daily as (

    select * from {{ ref('kpi_daily') }}

),

headline as (

    select
        count(*) as signed_up_users,
        sum(case when is_inactive then 1 else 0 end) as inactive_users,
        sum(case when signed_up_at <= {{ shift_days(as_of(), -var('conversion_window_days')) }} then 1 else 0 end)
            as mature_signups,
        sum(case when signed_up_at <= {{ shift_days(as_of(), -var('conversion_window_days')) }} and is_converted then 1 else 0 end)
            as converted_users,
        sum(case when signed_up_at <= {{ shift_days(as_of(), -var('conversion_window_days')) }}
                  and {{ is_started_within_window_sql('signed_up_at') }} then 1 else 0 end)
            as started_in_window_users

    from users

),

last_row as (

    select * from kpi_daily
    where date = {{ as_of_date() }}

)

select
    headline.*,
    last_row.date as kpi_date,
    last_row.signed_up_users as kpi_signed_up_users,
    last_row.inactive_users as kpi_inactive_users,
    last_row.mature_signups as kpi_mature_signups,
    last_row.converted_users as kpi_converted_users,
    last_row.started_in_window_users as kpi_started_in_window_users

from headline
left join last_row on true
where headline.signed_up_users > 0
  and (
      last_row.date is null
      or last_row.measured_at <> {{ as_of() }}
      or last_row.signed_up_users <> headline.signed_up_users
      or last_row.inactive_users <> headline.inactive_users
      or last_row.mature_signups <> headline.mature_signups
      or last_row.converted_users <> headline.converted_users
      or last_row.started_in_window_users <> headline.started_in_window_users
  )
