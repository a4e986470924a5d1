{#-
    The incremental rollups' reload point, read from `{{ this }}`: its high-water mark (the
    latest ingestion time it stored, in `column`) minus `late_data_lookback_hours`, so rows
    ingested late or by a run that overlapped the last one are read again. An empty table
    reloads everything.
-#}
{% macro reload_ingested_after(column='last_ingested_at') -%}
    {{ shift_hours("coalesce(max(" ~ column ~ "), cast('1900-01-01 00:00:00+00:00' as " ~ type_timestamptz() ~ "))", -(var('late_data_lookback_hours') | int)) }}
{%- endmacro %}
