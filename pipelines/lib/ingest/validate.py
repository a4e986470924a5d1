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
# The widest UTC offsets in use are +14:00 and -12:00; ISO 8601 readers (java.time, Segment)
# accept up to ±18:00. DuckDB itself would take "+99:00" and shift the time by four days.
MAX_UTC_OFFSET_SECONDS = 18 * 3600
# What str.strip() removes: identities are compared after trimming these from both ends.
IDENTITY_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680"
    + "".join(chr(code) for code in range(0x2000, 0x200B))
    + "\u2028\u2029\u202f\u205f\u3000"
)
# Control characters (C0, DEL, C1) and line/paragraph separators are refused in an identity.
_CONTROL_CLASS = r"[\x00-\x1f\x7f-\x{9f}\x{2028}\x{2029}]"
# An identity made only of these (printable ASCII, no blank) needs neither trim nor check:
# the cheap common case.
_PLAIN_ID = r"[!-~]*"

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

FILE_LEVEL_CODES = ("not_text", "unreadable_file", "missing_columns", "file_too_large")
ROW_CODES = (
    "line_too_long",  # decided by the reader, before any other check
    "not_utf8",
    "record_too_large",
    "invalid_json",
    "not_an_object",
    "malformed_csv_row",
    "unknown_type",
    "wrong_field_type",
    "non_finite_number",
    "invalid_identity",
    "nul_character",
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


def _chars(text: str) -> str:
    """A SQL string expression of these characters (no escaping pitfalls in SQL text)."""
    return " || ".join(f"chr({ord(char)})" for char in text)


def _bad_offset(text: str, instant: str) -> str:
    """The text's UTC offset is beyond ±18:00 (DuckDB reads the time without its offset
    as a plain timestamp, so the difference is the offset). "…Z" needs no look."""
    return (
        f"case when suffix({text}, 'Z') then false"
        f" else abs(epoch(try_cast({text} as timestamp)) - epoch({instant}))"
        f" > {MAX_UTC_OFFSET_SECONDS} end"
    )


def _invalid_time(text: str, instant: str) -> str:
    return f"({instant} is null or {_bad_offset(text, instant)})"


def _time_message(field: str, text: str, instant: str) -> str:
    shown = _show(text)
    return (
        f"case when {instant} is null then '{field} ' || {shown}"
        " || ' is not an ISO 8601 date-time'"
        f" else '{field} ' || {shown} || ' has a UTC offset beyond ±18:00' end"
    )


def _out_of_range(instant: str) -> str:
    return (
        f"({instant} < timestamptz '2000-01-01 00:00:00+00'"
        f" or {instant} > $reference_time + interval 1 day)"
    )


def _non_finite(column: str) -> str:
    """A JSON value holds NaN or Infinity (DuckDB's parser accepts them in any letter case,
    JSON does not): on the minified JSON with its strings blanked out, a non-finite token
    starts a value, after `:`, `,` or `[`. Costly, so only for rows `_MAYBE_NON_FINITE`."""
    strings = r"'\"(?:[^\"\\]|\\.)*\"'"
    return (
        f"coalesce(regexp_matches(regexp_replace({column}::varchar, {strings}, '\"\"', 'g'),"
        r" '(?i)[:,\[]-?(?:nan|inf)'), false)"
    )


# The cheap test every row takes: "nan" or "inf" anywhere in the three objects, any case
# (lower-cased once: the objects are most of a record's bytes).
_MAYBE_NON_FINITE = "(contains(objects_lower, 'nan') or contains(objects_lower, 'inf'))"
_OBJECT_FIELDS = (("f_properties", "properties"), ("f_traits", "traits"), ("f_context", "context"))


# U+0000 in a loaded text value, or escaped in the JSON objects (`\u0000` not preceded by an
# escaped backslash): PostgreSQL text cannot hold it, and `->>` on such JSON fails there, so
# the record is rejected on both engines alike. (Identities are `invalid_identity` already.)
_NUL_IN_TEXT = "contains(concat(message_id, event_text, name_text), chr(0))"
_NUL_IN_OBJECTS = (
    r"contains(objects_lower, '\u0000')"
    r" and regexp_matches(objects_lower, '(^|[^\\])(\\\\)*\\u0000')"
)


def _control_in(column: str, plain: str) -> str:
    return f"case when {plain} then false else regexp_matches({column}, '{_CONTROL_CLASS}') end"


def _control_message(column: str, name: str) -> str:
    found = f"regexp_extract({column}, '{_CONTROL_CLASS}')"
    return (
        f"'field {name} contains control character '"
        f" || printf('U+%04X', unicode({found})) || ' at character '"
        f" || strpos({column}, {found})"
    )


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
        "non_finite_number",
        f"case when {_MAYBE_NON_FINITE} then "
        + " or ".join(_non_finite(column) for column, _ in _OBJECT_FIELDS)
        + " else false end",
        "case "
        + " ".join(
            f"when {_non_finite(column)} then 'field {name} contains NaN or Infinity,"
            " which JSON does not allow'"
            for column, name in _OBJECT_FIELDS
        )
        + " end",
    ),
    (
        "invalid_identity",
        f"({_control_in('user_id', 'user_id_plain')})"
        f" or ({_control_in('anonymous_id', 'anonymous_id_plain')})",
        f"case when {_control_in('user_id', 'user_id_plain')}"
        f" then {_control_message('user_id', 'userId')}"
        f" else {_control_message('anonymous_id', 'anonymousId')} end",
    ),
    (
        "nul_character",
        f"({_NUL_IN_TEXT}) or ({_NUL_IN_OBJECTS})",
        "'record holds the character U+0000 (NUL) in '"
        f" || case when {_NUL_IN_TEXT} then 'messageId, event or name'"
        " else 'properties, traits or context' end"
        " || ': text cannot hold it on every warehouse engine (PostgreSQL)'",
    ),
    (
        "missing_identity",
        "coalesce(user_id, '') = '' and coalesce(anonymous_id, '') = ''",
        "'record has neither userId nor anonymousId (or only blanks)'",
    ),
    (
        "missing_event_name",
        "type_text = 'track' and coalesce(event_text, '') = ''",
        "'track record has no event name (field event)'",
    ),
    ("missing_timestamp", "coalesce(timestamp_text, '') = ''", "'record has no timestamp'"),
    (
        "invalid_timestamp",
        f"{_invalid_time('timestamp_text', 'occurred_at')}"
        f" or (received_text is not null and {_invalid_time('received_text', 'received_at')})",
        f"case when {_invalid_time('timestamp_text', 'occurred_at')}"
        f" then {_time_message('timestamp', 'timestamp_text', 'occurred_at')}"
        f" else {_time_message('receivedAt', 'received_text', 'received_at')} end",
    ),
    (
        "timestamp_out_of_range",
        f"{_out_of_range('occurred_at')} or {_out_of_range('received_at')}",
        f"case when {_out_of_range('occurred_at')} then 'timestamp ' || {_show('timestamp_text')}"
        " else 'receivedAt ' || "
        f"{_show('received_text')} end || ' is before 2000 or more than a day"
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
    unmarked as (
        -- A byte-order mark before a record (a file saved as "UTF-8 with BOM", or such
        -- files concatenated) is not part of it; the record is kept as received.
        select *,
               case when starts_with(raw_text, chr(65279)) then substr(raw_text, 2)
                    else raw_text end as json_text
        from decoded
    ),
    parsed as (
        select *,
               coalesce(record_bytes <= {MAX_RECORD_BYTES} and json_valid(json_text), false)
                   as is_json
        from unmarked
    ),
    records as (
        select *, case when is_json then json_type(json_text) end as json_kind
        from parsed
        where case
            when is_json or raw_text is null then true
            else trim(raw_text, chr(32) || chr(9) || chr(13) || chr(10) || chr(65279)) <> ''
        end
    ),
    split as (
        select *,
               case when json_kind = 'OBJECT' then json_transform(json_text, '{struct}') end
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
               f_user_id ->> '$' as user_id_text,
               f_anonymous_id ->> '$' as anonymous_id_text,
               f_timestamp ->> '$' as timestamp_text,
               case when json_type(f_timestamp) = 'VARCHAR'
                    then try_cast(f_timestamp ->> '$' as timestamptz) end as occurred_at,
               case when json_type(f_received_at) = 'VARCHAR'
                    then nullif(f_received_at ->> '$', '') end as received_text
        from candidates
    ),
    identified as (
        select *,
               regexp_full_match(coalesce(user_id_text, ''), '{_PLAIN_ID}') as user_id_plain,
               regexp_full_match(coalesce(anonymous_id_text, ''), '{_PLAIN_ID}')
                   as anonymous_id_plain,
               try_cast(received_text as timestamptz) as received_at,
               lower(concat(f_properties::varchar, f_traits::varchar, f_context::varchar))
                   as objects_lower
        from typed
    ),
    trimmed as (
        select *,
               case when user_id_plain then user_id_text
                    else trim(user_id_text, {_chars(IDENTITY_WHITESPACE)}) end as user_id,
               case when anonymous_id_plain then anonymous_id_text
                    else trim(anonymous_id_text, {_chars(IDENTITY_WHITESPACE)}) end
                   as anonymous_id
        from identified
    ),
    judged as (
        select *, case {codes} end as error_code from trimmed
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
