{#- Lenient casts for user-supplied trait values: a value that does not parse becomes null
    instead of failing the model. -#}

{% macro try_cast_timestamptz(text_expr) -%}
    {{ return(adapter.dispatch('try_cast_timestamptz', 'bis')(text_expr)) }}
{%- endmacro %}

{% macro default__try_cast_timestamptz(text_expr) -%}
    case
        when ({{ text_expr }}) ~ '^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])([T ]([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d+)?)?)?(Z|[+-]\d{2}(:?\d{2})?)?$'
            then cast({{ text_expr }} as {{ type_timestamptz() }})
    end
{%- endmacro %}

{% macro duckdb__try_cast_timestamptz(text_expr) -%}
    try_cast({{ text_expr }} as {{ type_timestamptz() }})
{%- endmacro %}

{#- true/false from the usual spellings (JSON booleans arrive as 'true'/'false'); else null. -#}
{% macro text_to_boolean(text_expr) -%}
    case
        when lower(trim({{ text_expr }})) in ('true', 't', '1', 'yes', 'y') then true
        when lower(trim({{ text_expr }})) in ('false', 'f', '0', 'no', 'n') then false
    end
{%- endmacro %}
