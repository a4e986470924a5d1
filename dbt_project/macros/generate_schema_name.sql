{#- Schemas are exactly `staging`, `intermediate` and `marts` (docs/architecture.md §4): no target prefix.
    On PostgreSQL the pipeline sets BIS_DBT_MARTS_SCHEMA: the marts are built in that shadow
    schema and swapped in for `marts` after a good build (pipelines/lib/shadow_marts.py, §16). -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- elif custom_schema_name | trim == 'marts' -%}
        {{ env_var('BIS_DBT_MARTS_SCHEMA', 'marts') }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
