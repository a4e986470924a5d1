{#-
    The onboarding definitions of docs/architecture.md §5 in one place, used by the per-user models and by
    kpi_daily (which evaluates them as of the end of every day), so they cannot drift apart.
-#}

{#- The four onboarding step event names, in order (var `onboarding_steps`). -#}
{% macro onboarding_steps() -%}
    {%- set steps = var('onboarding_steps') -%}
    {%- if steps is string or steps | length != 4 -%}
        {{ exceptions.raise_compiler_error("var 'onboarding_steps' must list exactly four event names (the contract has step_1_at ... step_4_at), got: " ~ steps) }}
    {%- endif -%}
    {{ return(steps) }}
{%- endmacro %}

{#- A SQL string literal. -#}
{% macro sql_string(value) -%}
    '{{ dbt.escape_single_quotes(value) }}'
{%- endmacro %}

{#- The end of the conversion window: signed_up_at + conversion_window_days. -#}
{% macro conversion_window_end(signed_up_at) -%}
    {{ shift_days(signed_up_at, var('conversion_window_days')) }}
{%- endmacro %}

{#- converted: all four steps done within conversion_window_days of signed_up_at (inclusive). -#}
{% macro is_converted_sql(signed_up_at, prefix='') -%}
    coalesce(
    {%- for step in onboarding_steps() %}
        {{ prefix }}step_{{ loop.index }}_at <= {{ conversion_window_end(signed_up_at) }}{% if not loop.last %} and{% endif %}
    {%- endfor %}
    , false)
{%- endmacro %}

{#- started within the window: at least one step done within conversion_window_days of signup. -#}
{% macro is_started_within_window_sql(signed_up_at, prefix='') -%}
    coalesce(
        least(
        {%- for step in onboarding_steps() %}
            {{ prefix }}step_{{ loop.index }}_at{% if not loop.last %},{% endif %}
        {%- endfor %}
        ) <= {{ conversion_window_end(signed_up_at) }}
    , false)
{%- endmacro %}

{#- How many of the four steps are done. -#}
{% macro steps_completed_sql(prefix='') -%}
    (
    {%- for step in onboarding_steps() %}
        case when {{ prefix }}step_{{ loop.index }}_at is not null then 1 else 0 end{% if not loop.last %} +{% endif %}
    {%- endfor %}
    )
{%- endmacro %}
