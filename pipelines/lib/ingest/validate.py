"""Set-based validation SQL: every chunk (`landing_chunk`) becomes `candidates`, then the
checked rows (`checked_rows`).

Each candidate row carries the Segment fields as JSON values (null when absent), whatever
format the file had, so one rule list judges JSON Lines, CSV and Parquet alike. The first
failing rule, in the order of REJECTION_RULES, names the rejection.
"""

from __future__ import annotations

import pyarrow as pa

MAX_RECORD_BYTES = 32 * 1024
MAX_KEPT_RAW_CHARS = 64 * 1024
EVENT_TYPES = ("track", "identify", "page")

# (column in candidates, field name in the record, expected JSON kind)
FIELDS = (
    ("f_message_id", "messageId", "id"),
    ("f_type", "type", "string"),
    ("f_event", "event", "string"),
    ("f_name", "name", "string"),
    ("f_user_id", "userId", "id"),
    ("f_anonymous_id", "anonymousId", "id"),
    ("f_timestamp", "timestamp", "string"),
    ("f_received_at", "receivedAt", "string"),
    ("f_properties", "properties", "object"),
    ("f_traits", "traits", "object"),
    ("f_context", "context", "object"),
)
_KIND_TYPES = {
    "id": ("VARCHAR", "BIGINT", "UBIGINT"),  # Segment coerces numeric ids to strings
    "string": ("VARCHAR",),
    "object": ("OBJECT",),
}
_KIND_WORDS = {"id": "a string or an integer", "string": "a string", "object": "a JSON object"}

FILE_LEVEL_CODES = ("not_text", "unreadable_file", "missing_columns")
ROW_CODES = (
    "not_utf8",
    "record_too_large",
    "invalid_json",
    "not_an_object",
    "malformed_csv_row",
    "unknown_type",
    "wrong_field_type",
    "missing_identity",
    "missing_event_name",
    "missing_timestamp",
    "invalid_timestamp",
    "timestamp_out_of_range",
)


def _sql_list(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)


def _quote(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _wrong_type_checks() -> list[tuple[str, str]]:
    """(condition, message) per field whose JSON kind is wrong."""
    checks = []
    for column, name, kind in FIELDS:
        allowed = _sql_list(_KIND_TYPES[kind])
        condition = f"{column} is not null and json_type({column}) not in ({allowed})"
        message = (
            f"'field {name} must be {_KIND_WORDS[kind]}, got '"
            f" || lower(json_type({column})) || ': ' || left({column}::varchar, 80)"
        )
        checks.append((condition, message))
    return checks


def _show(expr: str) -> str:
    return f"coalesce('''' || left({expr}, 80) || '''', 'null')"


# Ordered (code, condition over `typed`, message expression). The first match wins.
REJECTION_RULES: tuple[tuple[str, str, str], ...] = (
    ("not_utf8", "not is_utf8", "'record is not valid UTF-8'"),
    (
        "record_too_large",
        f"record_bytes > {MAX_RECORD_BYTES}",
        f"'record is ' || record_bytes || ' bytes, over the {MAX_RECORD_BYTES} byte limit'",
    ),
    ("invalid_json", "not is_json", "'record is not valid JSON'"),
    (
        "not_an_object",
        "not is_object",
        "'record must be a JSON object, got ' || coalesce(lower(json_kind), 'nothing')",
    ),
    (
        "unknown_type",
        "f_type is null or json_type(f_type) <> 'VARCHAR'"
        f" or type_text not in ({_sql_list(EVENT_TYPES)})",
        f"'type ' || {_show('coalesce(type_text, f_type::varchar)')}"
        f" || ' is not one of {', '.join(EVENT_TYPES)}'",
    ),
    (
        "wrong_field_type",
        " or ".join(f"({cond})" for cond, _ in _wrong_type_checks()),
        "case "
        + " ".join(f"when {cond} then {msg}" for cond, msg in _wrong_type_checks())
        + " end",
    ),
    (
        "missing_identity",
        "coalesce(user_id, '') = '' and coalesce(anonymous_id, '') = ''",
        "'record has neither userId nor anonymousId'",
    ),
    (
        "missing_event_name",
        "type_text = 'track' and coalesce(event_text, '') = ''",
        "'track record has no event name (field event)'",
    ),
    ("missing_timestamp", "coalesce(timestamp_text, '') = ''", "'record has no timestamp'"),
    (
        "invalid_timestamp",
        "occurred_at is null",
        f"'timestamp ' || {_show('timestamp_text')} || ' is not an ISO 8601 date-time'",
    ),
    (
        "timestamp_out_of_range",
        "occurred_at < timestamptz '2000-01-01 00:00:00+00'"
        " or occurred_at > $reference_time + interval 1 day",
        f"'timestamp ' || {_show('timestamp_text')} || ' is before 2000 or more than a day"
        " after ' || strftime($reference_time, '%Y-%m-%dT%H:%M:%SZ')",
    ),
)


def lines_candidates_sql() -> str:
    """Candidates from a `landing_chunk` of (line_number, raw) JSON Lines; blank lines dropped.

    Each line is parsed once into a struct of its Segment fields (`json_transform`; absent
    and JSON null both become SQL null). A line keeps its line break here; it is stripped
    only from the lines that are rejected, which are few.
    """
    struct = "{" + ", ".join(f'"{name}": "JSON"' for _, name, _ in FIELDS) + "}"
    fields = ",\n        ".join(f'parts."{name}" as {column}' for column, name, _ in FIELDS)
    return f"""
    with decoded as (
        select line_number, raw as raw_bytes, octet_length(raw) as record_bytes,
               try(decode(raw)) as raw_text
        from landing_chunk
    ),
    parsed as (
        select *,
               coalesce(record_bytes <= {MAX_RECORD_BYTES} and json_valid(raw_text), false)
                   as is_json
        from decoded
    ),
    records as (
        select *, case when is_json then json_type(raw_text) end as json_kind
        from parsed
        where case
            when is_json or raw_text is null then true
            else trim(raw_text, chr(32) || chr(9) || chr(13) || chr(10)) <> ''
        end
    ),
    split as (
        select *,
               case when json_kind = 'OBJECT' then json_transform(raw_text, '{struct}') end
                   as parts
        from records
    )
    select line_number, raw_bytes, record_bytes, raw_text as raw_record,
           raw_text is not null as is_utf8, is_json,
           coalesce(json_kind = 'OBJECT', false) as is_object, json_kind,
        {fields}
    from split
    """


def _columns_parts(schema: pa.Schema) -> tuple[dict[str, str], str]:
    """Text of each Segment field present (empty for typed Parquet columns), and the
    `decoded` CTE that adds them as `t_<field>` to the chunk."""
    present = schema.names
    texts: dict[str, str] = {}
    for _, name, _ in FIELDS:
        if name not in present:
            continue
        arrow_type = schema.field(name).type
        column = _quote(name)
        if pa.types.is_binary(arrow_type) or pa.types.is_large_binary(arrow_type):
            texts[name] = f"try(decode({column}))"
        elif pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
            texts[name] = column
        else:
            texts[name] = ""  # typed Parquet column: rendered with to_json below
    text_columns = ", ".join(f"{expr} as t_{name}" for name, expr in texts.items() if expr)
    decoded = f"select *{', ' + text_columns if text_columns else ''} from landing_chunk"
    return texts, decoded


def columns_candidates_sql(schema: pa.Schema) -> str:
    """Candidates from a `landing_chunk` of CSV (binary) or Parquet (typed) columns.

    `raw_record` is left null here: building it for every row costs as much as the rest of
    the validation, so `columns_raw_records_sql` builds it for the rejected rows only.
    """
    texts, decoded = _columns_parts(schema)
    present = schema.names
    json_values = []
    for column, name, kind in FIELDS:
        if name not in present:
            json_values.append(f"null::json as {column}")
        elif texts[name] == "":
            json_values.append(f"to_json({_quote(name)}) as {column}")
        elif kind == "object":
            # JSON text that does not parse stays a string, so it fails as the wrong kind.
            json_values.append(
                f"case when coalesce(t_{name}, '') = '' then null"
                f" else coalesce(try(json(t_{name})), to_json(t_{name})) end as {column}"
            )
        else:
            json_values.append(f"to_json(nullif(t_{name}, '')) as {column}")
    binary_names = [n for n in texts if texts[n].startswith("try(decode")]
    utf8_checks = (
        " and ".join(f"({_quote(n)} is null or t_{n} is not null)" for n in binary_names) or "true"
    )
    sizes = " + ".join(f"coalesce(strlen(t_{n}), 0)" for n in texts if texts[n]) or "0"
    raw_bytes = " || ','::blob || ".join(f"coalesce({_quote(n)}, ''::blob)" for n in binary_names)
    return f"""
    with decoded as ({decoded})
    select line_number,
           {raw_bytes or "null::blob"} as raw_bytes,
           {sizes} as record_bytes,
           null::varchar as raw_record,
           {utf8_checks} as is_utf8, true as is_json, true as is_object, 'OBJECT' as json_kind,
           {", ".join(json_values)}
    from decoded
    """


def columns_raw_records_sql(schema: pa.Schema) -> str:
    """(line_number, raw_text): each row of a columns `landing_chunk` as a JSON object, as received,
    for the rows that `checked_rows` rejected."""
    texts, decoded = _columns_parts(schema)
    raw_pairs = ", ".join(
        f"'{name}', {('t_' + name) if texts[name] else _quote(name)}" for name in texts
    )
    return f"""
    with decoded as ({decoded})
    select line_number, json_object({raw_pairs})::varchar as raw_text
    from decoded
    where line_number in (select line_number from checked_rows where error_code is not null)
    """


def checked_sql(candidates_sql: str) -> str:
    """Typed fields, the rejection decision, and the event id, for each candidate."""
    codes = " ".join(f"when {cond} then '{code}'" for code, cond, _ in REJECTION_RULES)
    messages = " ".join(f"when {cond} then {msg}" for _, cond, msg in REJECTION_RULES)
    return f"""
    with candidates as ({candidates_sql}),
    typed as (
        select *,
               f_type ->> '$' as type_text,
               nullif(f_message_id ->> '$', '') as message_id,
               f_event ->> '$' as event_text,
               f_name ->> '$' as name_text,
               f_user_id ->> '$' as user_id,
               f_anonymous_id ->> '$' as anonymous_id,
               f_timestamp ->> '$' as timestamp_text,
               case when json_type(f_timestamp) = 'VARCHAR'
                    then try_cast(f_timestamp ->> '$' as timestamptz) end as occurred_at,
               case when json_type(f_received_at) = 'VARCHAR'
                    then try_cast(f_received_at ->> '$' as timestamptz) end as received_at
        from candidates
    ),
    judged as (
        select *, case {codes} end as error_code from typed
    )
    select line_number,
           error_code,
           case when error_code is not null then case {messages} end end as error_message,
           case when error_code is not null
                then left(rtrim(raw_record, chr(13) || chr(10)), {MAX_KEPT_RAW_CHARS}) end
               as raw_record,
           case when error_code = 'not_utf8' then raw_bytes end as raw_bytes,
           coalesce(
               message_id,
               md5(concat_ws(chr(31), type_text, coalesce(event_text, name_text, ''),
                             coalesce(user_id, ''), coalesce(anonymous_id, ''), timestamp_text,
                             coalesce(f_properties::varchar, ''), coalesce(f_traits::varchar, ''),
                             coalesce(f_context::varchar, '')))
           ) as event_id,
           type_text as event_type,
           case type_text when 'track' then event_text when 'page' then name_text end
               as event_name,
           nullif(user_id, '') as user_id,
           nullif(anonymous_id, '') as anonymous_id,
           occurred_at,
           received_at,
           f_properties as properties,
           f_traits as traits,
           f_context as context
    from judged
    """
