{#- The text of one top-level key of a JSON column (null when absent or JSON null). -#}
{% macro json_text(column, key) -%}
    {{ return(adapter.dispatch('json_text', 'bis')(column, key)) }}
{%- endmacro %}

{% macro default__json_text(column, key) -%}
    ({{ column }} ->> '{{ key }}')
{%- endmacro %}

{% macro duckdb__json_text(column, key) -%}
    json_extract_string({{ column }}, '$."{{ key }}"')
{%- endmacro %}
