{#-
    The pipeline clock T (docs/architecture.md §3 `BIS_AS_OF`), the one place every time rule reads it.

    `var('as_of')`, else the `BIS_AS_OF` environment variable (how the pipeline passes it: a
    changed var would force dbt to re-parse the whole project), is an ISO 8601 timestamp
    ("2026-11-24T00:00:00+00:00", "...Z"; a value without an offset is UTC). Neither set means
    the moment this dbt invocation started (`run_started_at`), so all models of one run share
    one clock. Renders a timestamptz literal.
-#}
{% macro as_of() -%}
    {{ return(adapter.dispatch('as_of', 'bis')()) }}
{%- endmacro %}

{% macro default__as_of() -%}
    cast('{{ as_of_iso() }}' as {{ type_timestamptz() }})
{%- endmacro %}

{#- The clock as an ISO string in UTC, parsed and validated at compile time. -#}
{% macro as_of_iso() -%}
    {%- set raw = var('as_of', env_var('BIS_AS_OF', '')) -%}
    {%- set text = (raw | string | trim) if raw is not none else '' -%}
    {%- if text in ('', 'None', 'none', 'null') -%}
        {%- set parsed = run_started_at -%}
    {%- else -%}
        {%- set cleaned = text[:-1] ~ '+00:00' if text[-1:] in ('Z', 'z') else text -%}
        {%- set parsed = none -%}
        {%- set parsed = modules.datetime.datetime.fromisoformat(cleaned) if modules.re.match('^\\d{4}-\\d{2}-\\d{2}([T ]\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,6})?)?)?([+-]\\d{2}:?\\d{2})?$', cleaned) else none -%}
        {%- if parsed is none -%}
            {{ exceptions.raise_compiler_error("var 'as_of' must be an ISO 8601 timestamp such as 2026-11-24T00:00:00+00:00, got: " ~ text) }}
        {%- endif -%}
    {%- endif -%}
    {%- if parsed.tzinfo is none -%}
        {%- set parsed = parsed.replace(tzinfo=modules.pytz.utc) -%}
    {%- endif -%}
    {{- return(parsed.astimezone(modules.pytz.utc).strftime('%Y-%m-%d %H:%M:%S.%f+00:00')) -}}
{%- endmacro %}

{#- T's calendar day in UTC, as a date. -#}
{% macro as_of_date() -%}
    {{ utc_date(as_of()) }}
{%- endmacro %}
