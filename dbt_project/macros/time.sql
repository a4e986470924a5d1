{#- Time helpers. Every timestamp in the warehouse is a UTC timestamptz; days are UTC days. -#}

{% macro type_timestamptz() -%}
    {{ return(adapter.dispatch('type_timestamptz', 'bis')()) }}
{%- endmacro %}

{% macro default__type_timestamptz() -%}
    timestamp with time zone
{%- endmacro %}

{#- The UTC calendar date of a timestamptz, whatever the session time zone. -#}
{% macro utc_date(timestamp_expr) -%}
    {{ return(adapter.dispatch('utc_date', 'bis')(timestamp_expr)) }}
{%- endmacro %}

{% macro default__utc_date(timestamp_expr) -%}
    cast(({{ timestamp_expr }}) at time zone 'UTC' as date)
{%- endmacro %}

{#- Midnight UTC at the start of a date, as a timestamptz. -#}
{% macro utc_midnight(date_expr) -%}
    {{ return(adapter.dispatch('utc_midnight', 'bis')(date_expr)) }}
{%- endmacro %}

{% macro default__utc_midnight(date_expr) -%}
    (cast(({{ date_expr }}) as timestamp) at time zone 'UTC')
{%- endmacro %}

{#- Monday 00:00 UTC of the ISO week containing a timestamptz. -#}
{% macro utc_week_start(timestamp_expr) -%}
    {{ utc_midnight(dbt.date_trunc('week', "(" ~ timestamp_expr ~ ") at time zone 'UTC'")) }}
{%- endmacro %}

{#- A timestamptz shifted by a whole number of hours (negative = earlier). Days are expressed as
    24 h so that no engine applies a daylight-saving calendar day. -#}
{% macro shift_hours(timestamp_expr, hours) -%}
    {{ dbt.dateadd('hour', hours, timestamp_expr) }}
{%- endmacro %}

{% macro shift_days(timestamp_expr, days) -%}
    {{ shift_hours(timestamp_expr, (days | int) * 24) }}
{%- endmacro %}

{#- Seconds elapsed from one timestamptz to another, as a double (negative when earlier). -#}
{% macro seconds_between(start_expr, end_expr) -%}
    {{ return(adapter.dispatch('seconds_between', 'bis')(start_expr, end_expr)) }}
{%- endmacro %}

{% macro default__seconds_between(start_expr, end_expr) -%}
    cast(extract(epoch from (({{ end_expr }}) - ({{ start_expr }}))) as float8)
{%- endmacro %}

{% macro duckdb__seconds_between(start_expr, end_expr) -%}
    (epoch({{ end_expr }}) - epoch({{ start_expr }}))
{%- endmacro %}

{#- One row per UTC date from start_column to end_column (both dates, inclusive), as a
    set-returning expression for a select list: `select {{ ... }} as day from bounds`. -#}
{% macro day_series(start_column, end_column) -%}
    {{ return(adapter.dispatch('day_series', 'bis')(start_column, end_column)) }}
{%- endmacro %}

{% macro default__day_series(start_column, end_column) -%}
    cast(generate_series(cast({{ start_column }} as timestamp), cast({{ end_column }} as timestamp), interval '1 day') as date)
{%- endmacro %}

{% macro duckdb__day_series(start_column, end_column) -%}
    cast(unnest(generate_series(cast({{ start_column }} as timestamp), cast({{ end_column }} as timestamp), interval 1 day)) as date)
{%- endmacro %}
