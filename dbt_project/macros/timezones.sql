{#- A relation with one row per IANA time zone name the engine knows, column `name`.
    DuckDB has the table function pg_timezone_names(), PostgreSQL the view pg_timezone_names. -#}
{% macro timezone_names_relation() -%}
    {{ return(adapter.dispatch('timezone_names_relation', 'bis')()) }}
{%- endmacro %}

{% macro default__timezone_names_relation() -%}
    pg_timezone_names
{%- endmacro %}

{% macro duckdb__timezone_names_relation() -%}
    pg_timezone_names()
{%- endmacro %}
