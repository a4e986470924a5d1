{#-
    kpi_daily measures each UTC day d at T_d = min(d + 1 day, as_of): midnight at the end of the
    day, or as_of on as_of's own day. T_d only grows with d, so "T_d >= ts" holds from one day
    on. This is that day for an instant ts <= as_of: the day that ends at or after ts, i.e. ts's
    own day, or the day before when ts is exactly midnight (the end of that day).
-#}
{% macro first_day_measured_at_or_after(ts) -%}
    case
        when ({{ ts }}) = {{ utc_midnight(utc_date(ts)) }} then {{ utc_date(shift_hours(ts, -24)) }}
        else {{ utc_date(ts) }}
    end
{%- endmacro %}
