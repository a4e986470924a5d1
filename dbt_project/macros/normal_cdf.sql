{#- Standard normal CDF, Phi(z), in portable SQL (DuckDB and PostgreSQL have no erf).

    Hart (1968) double-precision rational approximation as given by G. West, "Better
    approximations to cumulative normal functions" (2005): absolute error below 1e-14 over the
    whole line, and the lower tail is computed directly (no 1 - Phi cancellation), so small
    p-values keep their relative precision. exp() sees at most 37^2/2, so PostgreSQL never
    underflows. `z` must be a column or parenthesised expression; null in, null out. -#}
{% macro normal_cdf(z) -%}
    {%- set x = "abs(cast((" ~ z ~ ") as double precision))" -%}
    {%- set xc = "least(" ~ x ~ ", 37.0)" -%}
    (case
        when ({{ z }}) is null then null
        else
            (case when ({{ z }}) > 0 then -1.0 else 1.0 end) * (
                case
                    when {{ x }} >= 37.0 then 0.0
                    when {{ x }} < 7.07106781186547 then
                        exp(-{{ xc }} * {{ xc }} / 2.0)
                        * ((((((3.52624965998911e-02 * {{ x }} + 0.700383064443688) * {{ x }}
                            + 6.37396220353165) * {{ x }} + 33.912866078383) * {{ x }}
                            + 112.079291497871) * {{ x }} + 221.213596169931) * {{ x }}
                            + 220.206867912376)
                        / (((((((8.83883476483184e-02 * {{ x }} + 1.75566716318264) * {{ x }}
                            + 16.064177579207) * {{ x }} + 86.7807322029461) * {{ x }}
                            + 296.564248779674) * {{ x }} + 637.333633378831) * {{ x }}
                            + 793.826512519948) * {{ x }} + 440.413735824752)
                    else
                        exp(-{{ xc }} * {{ xc }} / 2.0)
                        / ({{ x }} + 1.0 / ({{ x }} + 2.0 / ({{ x }} + 3.0 / ({{ x }} + 4.0 / ({{ x }} + 0.65)))))
                        / 2.506628274631
                end
            )
            + (case when ({{ z }}) > 0 then 1.0 else 0.0 end)
    end)
{%- endmacro %}

{#- Two-sided p-value of a standard normal statistic: 2 * Phi(-|z|), tail computed directly. -#}
{% macro normal_two_sided_p(z) -%}
    (2.0 * {{ normal_cdf("-abs(" ~ z ~ ")") }})
{%- endmacro %}

{#- The 0.975 quantile of the standard normal (scipy.stats.norm.ppf(0.975)). -#}
{% macro z_975() -%}
    1.959963984540054
{%- endmacro %}
