-- kpi_daily has exactly one row per day from its first day to as_of's day, with no gap.
with kpi_daily as (

    select * from {{ ref('kpi_daily') }}

),

span as (

    select
        min(date) as first_day,
        max(date) as last_day,
        count(*) as day_rows

    from kpi_daily

)

select *
from span
where day_rows > 0
  and (
      last_day <> {{ as_of_date() }}
      or day_rows <> {{ dbt.datediff('first_day', 'last_day', 'day') }} + 1
  )
