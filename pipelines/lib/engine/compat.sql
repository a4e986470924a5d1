-- DuckDB functions the pipeline's SQL uses that PostgreSQL lacks, so each query keeps one
-- source (docs/architecture.md §16). Idempotent: applied on every connection that migrates.
create or replace function public.epoch_us(ts timestamptz) returns bigint
    language sql immutable parallel safe
    return (extract(epoch from ts) * 1000000)::bigint;

create or replace function public.to_seconds(seconds double precision) returns interval
    language sql immutable parallel safe
    return make_interval(secs => seconds);

-- any_value is built in from PostgreSQL 16; on older servers this aggregate stands in.
create or replace function public.bis_first_value(state anyelement, value anyelement)
    returns anyelement language sql immutable parallel safe
    as 'select coalesce(state, value)';

do $$
begin
    if not exists (select 1 from pg_proc where proname = 'any_value'
                   and pronamespace = 'pg_catalog'::regnamespace) then
        create or replace aggregate public.any_value(anyelement) (
            sfunc = public.bis_first_value, stype = anyelement
        );
    end if;
end
$$;

-- DuckDB's md5_number: the MD5 digest as a 128-bit number, its bytes read little-endian.
create or replace function public.md5_number(value text) returns numeric
    language sql immutable parallel safe
    return (select sum(get_byte(decode(md5(value), 'hex'), i)::numeric * power(256::numeric, i))
            from generate_series(0, 15) as i)::numeric(40, 0);

create or replace function public.regexp_full_match(value text, pattern text) returns boolean
    language sql immutable parallel safe
    return value ~ ('^(?:' || pattern || ')$');

create or replace function public.hour(value timestamp) returns integer
    language sql immutable parallel safe
    return extract(hour from value)::integer;

create or replace function public.hour(value timestamptz) returns integer
    language sql stable parallel safe
    return extract(hour from value)::integer;

-- DuckDB's regexp_extract: the match (or group `g` of it), '' when nothing matches.
create or replace function public.regexp_extract(value text, pattern text, g integer default 0)
    returns text language sql immutable parallel safe
    return coalesce((regexp_match(value, '(' || pattern || ')'))[g + 1], '');
