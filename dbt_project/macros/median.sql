{#- The median (interpolated) of a numeric expression, as an aggregate. -#}
{% macro median(expr) -%}
    {{ return(adapter.dispatch('median', 'bis')(expr)) }}
{%- endmacro %}

{% macro default__median(expr) -%}
    percentile_cont(0.5) within group (order by {{ expr }})
{%- endmacro %}

{% macro duckdb__median(expr) -%}
    median({{ expr }})
{%- endmacro %}
