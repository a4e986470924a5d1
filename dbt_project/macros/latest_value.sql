{#- The value of `value_expr` on the latest (or earliest) row of the group by the
    `order_columns`, which must identify one row, among the rows where it is not null, as an
    aggregate; null when every row has it null. One pass over the rows instead of a window. -#}
{% macro latest_non_null(value_expr, order_columns) -%}
    {{ return(adapter.dispatch('extreme_non_null', 'bis')(value_expr, order_columns, latest=true)) }}
{%- endmacro %}

{% macro earliest_non_null(value_expr, order_columns) -%}
    {{ return(adapter.dispatch('extreme_non_null', 'bis')(value_expr, order_columns, latest=false)) }}
{%- endmacro %}

{% macro default__extreme_non_null(value_expr, order_columns, latest) -%}
    (array_agg({{ value_expr }} order by {% for column in order_columns %}{{ column }}{{ ' desc' if latest }}{% if not loop.last %}, {% endif %}{% endfor %})
        filter (where {{ value_expr }} is not null))[1]
{%- endmacro %}

{% macro duckdb__extreme_non_null(value_expr, order_columns, latest) -%}
    {{ 'arg_max' if latest else 'arg_min' }}({{ value_expr }}, struct_pack({% for column in order_columns %}k{{ loop.index }} := {{ column }}{% if not loop.last %}, {% endif %}{% endfor %}))
        filter (where {{ value_expr }} is not null)
{%- endmacro %}
