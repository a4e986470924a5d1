"""The sample generator: determinism, format parity, KPI calibration, malformed records.

The KPIs and segments are recomputed here with plain DuckDB SQL from docs/architecture.md §5,
and the malformed records are classified by an independent validator that follows the ingestion
order, so none of these checks trusts the generator's own bookkeeping.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from pipelines.lib.sample_data import BAD_RECORD_CODES, GenerateResult, generate_sample
from pipelines.lib.sample_data import generate as generate_module
from pipelines.lib.sample_data import simulate as simulate_module

END_AT = datetime(2026, 11, 24, tzinfo=UTC)
STEPS = ("Profile Completed", "First Project Created", "Teammate Invited", "First Report Shared")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
TABULAR_COLUMNS = [
    "messageId", "type", "event", "name", "userId", "anonymousId",
    "timestamp", "receivedAt", "properties", "traits", "context",
]  # fmt: skip


def _generate(out: Path, **kwargs: object) -> GenerateResult:
    args: dict[str, object] = {"end_at": END_AT, "users": 300, "days": 30, "progress": False}
    args.update(kwargs)
    return generate_sample(out_dir=out, **args)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def default_sample(tmp_path_factory: pytest.TempPathFactory) -> GenerateResult:
    """The calibrated default: 5000 users, 60 days, seed 7."""
    out = tmp_path_factory.mktemp("default_sample")
    return generate_sample(out_dir=out, end_at=END_AT, progress=False)


# -- an independent validator, in the order ingestion applies the checks ---------------


def _parse_ts(value: str) -> datetime | None:
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    offset = parsed.utcoffset()
    if offset is not None and abs(offset) > timedelta(hours=18):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
MAX_LINE_BYTES = 1024 * 1024


def _non_finite(value: object) -> bool:
    if isinstance(value, float):
        return value != value or value in (float("inf"), float("-inf"))
    if isinstance(value, dict):
        return any(_non_finite(item) for item in value.values())
    if isinstance(value, list):
        return any(_non_finite(item) for item in value)
    return False


def _classify_object(rec: dict, *, tabular: bool) -> str | None:
    """First failing check for a decoded record (after the byte/JSON-level checks)."""
    if rec.get("type") not in ("track", "identify", "page"):
        return "unknown_type"
    for key in ("userId", "anonymousId"):
        value = rec.get(key)
        # Segment allows numeric ids (coerced to text); objects, lists, booleans are wrong.
        if value is not None and (isinstance(value, bool) or not isinstance(value, str | int)):
            return "wrong_field_type"
    if rec.get("event") is not None and not isinstance(rec["event"], str):
        return "wrong_field_type"
    objects = {}
    for key in ("properties", "traits", "context"):
        value = rec.get(key)
        if tabular and value is not None:
            try:
                value = json.loads(value)
            except ValueError:
                return "wrong_field_type"
        if value is not None and not isinstance(value, dict):
            return "wrong_field_type"
        objects[key] = value
    if any(_non_finite(value) for value in objects.values()):
        return "non_finite_number"
    ids = [
        str(rec[key]).strip() if rec.get(key) is not None else ""
        for key in ("userId", "anonymousId")
    ]
    if any(_CONTROL.search(value) for value in ids):
        return "invalid_identity"
    texts = [rec.get(key) for key in ("messageId", "event", "name")]
    if any("\x00" in value for value in texts if isinstance(value, str)) or any(
        "\\u0000" in json.dumps(value) for value in objects.values()
    ):
        return "nul_character"
    if ids == ["", ""]:
        return "missing_identity"
    if rec["type"] == "track" and rec.get("event") in (None, ""):
        return "missing_event_name"
    if rec.get("timestamp") in (None, ""):
        return "missing_timestamp"
    ts = _parse_ts(rec["timestamp"]) if isinstance(rec["timestamp"], str) else None
    received = rec.get("receivedAt") or None
    received_at = _parse_ts(received) if received is not None else None
    if ts is None or (received is not None and received_at is None):
        return "invalid_timestamp"
    for moment in (ts, received_at):
        if moment is not None and (
            moment < datetime(2000, 1, 1, tzinfo=UTC) or moment > END_AT + timedelta(days=1)
        ):
            return "timestamp_out_of_range"
    return None


def _classify_line(raw: bytes) -> str | None:
    if len(raw) > MAX_LINE_BYTES:
        return "line_too_long"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not_utf8"
    if len(raw) > 32 * 1024:
        # Only this check may fail: the oversized record is otherwise a valid event.
        rec = json.loads(text)
        assert isinstance(rec, dict) and _classify_object(rec, tabular=False) is None
        return "record_too_large"
    try:
        rec = json.loads(text)
    except ValueError:
        return "invalid_json"
    if not isinstance(rec, dict):
        return "not_an_object"
    return _classify_object(rec, tabular=False)


def _classify_row(row: dict[str, str | None], *, lines: bool = False) -> str | None:
    """A CSV (`lines`) or Parquet row; only CSV has lines to be too long."""
    size = sum(len((v or "").encode("utf-8", errors="surrogateescape")) for v in row.values())
    if lines and size > MAX_LINE_BYTES:
        return "line_too_long"
    if any(isinstance(v, str) and re.search(r"[\udc80-\udcff]", v) for v in row.values()):
        return "not_utf8"
    if size > 32 * 1024:
        assert _classify_object(row, tabular=True) is None
        return "record_too_large"
    return _classify_object(row, tabular=True)


def _jsonl_lines(path: Path) -> list[bytes]:
    data = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
    assert data.endswith(b"\n")
    return data[:-1].split(b"\n")


# -- determinism, naming, atomic write -------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz", "parquet", "csv"])
def test_same_arguments_give_byte_identical_files(tmp_path: Path, fmt: str) -> None:
    first = _generate(tmp_path / "a", fmt=fmt, bad_lines=12)
    second = _generate(tmp_path / "b", fmt=fmt, bad_lines=12)
    other_seed = _generate(tmp_path / "c", fmt=fmt, bad_lines=12, seed=8)

    assert first.files[0].name == f"sample_s7_u300_d30_20261124.{fmt}"
    assert first.files[0].read_bytes() == second.files[0].read_bytes()
    assert (first.events, first.duplicates, first.bad_records) == (
        second.events,
        second.duplicates,
        second.bad_records,
    )
    assert first.files[0].read_bytes() != other_seed.files[0].read_bytes()
    # Only the final file is left: the temporary name was renamed away.
    assert [p.name for p in (tmp_path / "a").iterdir()] == [first.files[0].name]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "csv"])
def test_worker_processes_write_the_same_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    in_process = _generate(tmp_path / "one", fmt=fmt, bad_lines=11)
    monkeypatch.setattr(generate_module, "PARALLEL_MIN_USERS", 1)
    monkeypatch.setattr(generate_module, "_CHUNK_USERS", 40)  # several chunks per worker
    monkeypatch.setattr(generate_module, "_worker_count", lambda users: 2)
    in_workers = _generate(tmp_path / "two", fmt=fmt, bad_lines=11)
    assert in_workers.files[0].read_bytes() == in_process.files[0].read_bytes()
    assert in_workers.events == in_process.events


def test_a_failed_run_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = simulate_module.UserSimulator.simulate

    def failing(self: simulate_module.UserSimulator, index: int) -> object:
        if index == 50:
            raise RuntimeError("disk full")
        return original(self, index)

    monkeypatch.setattr(simulate_module.UserSimulator, "simulate", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        _generate(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_rejects_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="format"):
        _generate(tmp_path, fmt="xml")


# -- format parity -----------------------------------------------------------------------


def _tuples_jsonl(con: duckdb.DuckDBPyConnection, path: Path) -> set[tuple]:
    rows = con.execute(
        """
        select json_extract_string(json, '$.messageId'), json_extract_string(json, '$.type'),
               json_extract_string(json, '$.event'), json_extract_string(json, '$.userId'),
               json_extract_string(json, '$.anonymousId'),
               json_extract_string(json, '$.timestamp')
        from read_json_objects(?, format = 'newline_delimited')
        """,
        [str(path)],
    ).fetchall()
    return set(rows)


def test_formats_hold_the_same_events(tmp_path: Path) -> None:
    results = {fmt: _generate(tmp_path, fmt=fmt, users=400) for fmt in ("jsonl", "parquet", "csv")}
    results["jsonl.gz"] = _generate(tmp_path, fmt="jsonl.gz", users=400)
    con = duckdb.connect()
    cols = "messageId, type, event, userId, anonymousId, timestamp"
    from_jsonl = _tuples_jsonl(con, results["jsonl"].files[0])
    from_gz = _tuples_jsonl(con, results["jsonl.gz"].files[0])
    from_parquet = set(
        con.execute(f"select {cols} from read_parquet(?)", [str(results["parquet"].files[0])])
        .fetchall()
    )  # fmt: skip
    from_csv = set(
        con.execute(
            f"select {cols} from read_csv(?, header = true, all_varchar = true)",
            [str(results["csv"].files[0])],
        ).fetchall()
    )
    assert len(from_jsonl) > 5000
    assert from_jsonl == from_gz == from_parquet == from_csv
    assert len({r.events for r in results.values()}) == 1
    assert len({r.duplicates for r in results.values()}) == 1

    # Field by field, including the JSON columns, parquet rows equal the JSONL objects.
    objects = {}
    for line in _jsonl_lines(results["jsonl"].files[0]):
        rec = json.loads(line)
        objects[rec["messageId"]] = rec
    table = pq.read_table(results["parquet"].files[0])
    assert table.column_names == TABULAR_COLUMNS
    assert {str(f.type) for f in table.schema} == {"string"}
    for row in table.to_pylist():
        rec = objects[row["messageId"]]
        for key in ("properties", "traits", "context"):
            assert (json.loads(row[key]) if row[key] is not None else None) == rec.get(key)
        for key in ("type", "event", "name", "anonymousId", "timestamp", "receivedAt"):
            assert row[key] == rec.get(key)
        assert row["userId"] == (None if rec.get("userId") is None else str(rec["userId"]))


# -- record format -------------------------------------------------------------------------


def test_records_follow_the_segment_spec(default_sample: GenerateResult) -> None:
    path = default_sample.files[0]
    lines = _jsonl_lines(path)
    assert len(lines) == default_sample.events
    seen: Counter[str] = Counter()
    first_line: dict[str, bytes] = {}
    types: Counter[str] = Counter()
    numeric_ids = anonymous_only = 0
    users_with_anon: set[str] = set()
    users: set[str] = set()
    admins: set[str] = set()
    timezones: Counter[str] = Counter()
    for raw in lines:
        rec = json.loads(raw)
        mid = rec["messageId"]
        seen[mid] += 1
        if mid in first_line:
            assert raw == first_line[mid], "a re-send must be an exact copy"
            continue
        first_line[mid] = raw
        types[rec["type"]] += 1
        assert ISO_MS.fullmatch(rec["timestamp"]) and ISO_MS.fullmatch(rec["receivedAt"])
        ts, received = _parse_ts(rec["timestamp"]), _parse_ts(rec["receivedAt"])
        assert ts is not None and received is not None
        assert ts < received < END_AT
        assert received - ts < timedelta(minutes=2)
        assert isinstance(rec["context"], dict) and "library" in rec["context"]
        assert rec.get("userId") is not None or rec.get("anonymousId") is not None
        assert ("event" in rec) == (rec["type"] == "track")
        assert ("name" in rec) == (rec["type"] == "page")
        assert ("traits" in rec) == (rec["type"] == "identify")
        if isinstance(rec.get("userId"), int):
            numeric_ids += 1
        if rec.get("userId") is None:
            anonymous_only += 1
            assert rec["type"] == "page"
        else:
            users.add(str(rec["userId"]))
            if rec.get("anonymousId") and rec["type"] == "identify":
                users_with_anon.add(str(rec["userId"]))
        if rec["type"] == "identify":
            if rec["traits"].get("is_admin") is True:
                admins.add(str(rec["userId"]))
            if "created_at" in rec["traits"]:
                timezones[rec["traits"]["timezone"]] += 1
                assert {"email", "name", "timezone"} <= rec["traits"].keys()

    duplicates = sum(n - 1 for n in seen.values())
    assert duplicates == default_sample.duplicates
    assert 0.003 < duplicates / len(lines) < 0.008
    assert set(types) == {"track", "identify", "page"}
    assert len(users) == default_sample.users == 5000
    assert 0.001 < numeric_ids / len(lines) < 0.004
    assert anonymous_only > 0 and 0.25 < len(users_with_anon) / len(users) < 0.35
    assert 3 <= len(admins) <= 0.01 * len(users)
    assert sum(timezones.values()) == len(users)
    invalid = sum(n for tz, n in timezones.items() if tz in ("", "GMT+25", "Mars/Olympus"))
    assert invalid > 0
    assert len([tz for tz in timezones if tz.startswith(("America/", "Europe/", "Asia/"))]) > 15


# -- calibration against docs/architecture.md §5 ----------------------------------------------

_USERS_SQL = """
with raw as (
    select json_extract_string(json, '$.messageId') as message_id,
           json_extract_string(json, '$.type') as type,
           json_extract_string(json, '$.event') as event,
           json_extract_string(json, '$.userId') as user_id,
           cast(json_extract_string(json, '$.timestamp') as timestamptz) as ts
    from read_json_objects($path, format = 'newline_delimited')
),
events as (  -- Segment is at-least-once: a messageId counts once
    select * from raw qualify row_number() over (partition by message_id order by ts) = 1
)
select
    user_id,
    coalesce(min(ts) filter (where type = 'track' and event = 'Signed Up'), min(ts))
        as signed_up_at,
    min(ts) filter (where type = 'track' and event = $s1) as step_1_at,
    min(ts) filter (where type = 'track' and event = $s2) as step_2_at,
    min(ts) filter (where type = 'track' and event = $s3) as step_3_at,
    min(ts) filter (where type = 'track' and event = $s4) as step_4_at,
    max(ts) filter (where type = 'track') as last_active_at,
    count(*) filter (where type = 'track' and ts > $t - interval 7 day and ts <= $t)
        as events_last_7d,
    count(*) filter (where type = 'track' and ts > $t - interval 14 day
                     and ts <= $t - interval 7 day) as events_prev_7d
from events
where user_id is not null
group by user_id
"""

_KPI_SQL = """
with u as (
    select *,
        (step_1_at is not null)::int + (step_2_at is not null)::int
            + (step_3_at is not null)::int + (step_4_at is not null)::int as steps_completed,
        greatest(step_1_at, step_2_at, step_3_at, step_4_at) as last_step_at
    from users
),
flags as (
    select *,
        steps_completed = 4 and last_step_at <= signed_up_at + interval 14 day as converted,
        signed_up_at <= $t - interval 14 day as mature,
        step_1_at <= signed_up_at + interval 14 day as started_in_window,
        events_last_7d = 0 as inactive
    from u
)
select
    count(*) filter (where mature and converted) / count(*) filter (where mature),
    count(*) filter (where mature and converted)
        / count(*) filter (where mature and started_in_window),
    count(*) filter (where signed_up_at <= $t and inactive)
        / count(*) filter (where signed_up_at <= $t),
    count(*) filter (where steps_completed = 4 and not converted)
from flags
"""

_SEGMENT_SQL = """
with u as (
    select *,
        (step_1_at is not null)::int + (step_2_at is not null)::int
            + (step_3_at is not null)::int + (step_4_at is not null)::int as steps_completed,
        greatest(step_1_at, step_2_at, step_3_at, step_4_at) as last_step_at
    from users
)
select segment, count(*) from (
    select case
        when last_active_at <= $t - interval 30 day then 'lapsed'
        when steps_completed = 4 and last_active_at <= $t - interval 7 day then 'dormant'
        when steps_completed between 1 and 3 and last_step_at <= $t - interval 48 hour
            then 'stalled'
        when steps_completed = 0 and signed_up_at <= $t - interval 24 hour then 'never_started'
        when events_prev_7d >= 5 and events_last_7d < 0.5 * events_prev_7d then 'declining'
    end as segment
    from u
)
where segment is not null
group by segment
"""


@pytest.fixture(scope="module")
def warehouse(default_sample: GenerateResult) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("set timezone = 'UTC'")
    params = {
        "path": str(default_sample.files[0]),
        "t": END_AT,
        **{f"s{k}": step for k, step in enumerate(STEPS, start=1)},
    }
    con.execute(f"create table users as {_USERS_SQL}", params)
    return con


def test_default_sample_hits_the_baseline_kpis(warehouse: duckdb.DuckDBPyConnection) -> None:
    conversion, completion, inactivity, completed_late = warehouse.execute(
        _KPI_SQL, {"t": END_AT}
    ).fetchone()
    print(
        f"\nonboarding_conversion_rate={conversion:.2%} onboarding_completion_rate="
        f"{completion:.2%} inactivity_rate={inactivity:.2%} completed_late={completed_late}"
    )
    assert abs(conversion - 0.278) <= 0.03
    assert abs(completion - 0.48) <= 0.04
    assert abs(inactivity - 0.722) <= 0.04
    assert completed_late > 0  # some finish onboarding after the 14-day window


def test_default_sample_has_every_nurture_pattern(warehouse: duckdb.DuckDBPyConnection) -> None:
    counts = dict(warehouse.execute(_SEGMENT_SQL, {"t": END_AT}).fetchall())
    print(f"\nnurture segments: {counts}")
    for segment in ("lapsed", "dormant", "stalled", "never_started", "declining"):
        assert counts.get(segment, 0) >= 20, segment


# -- malformed records -------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz"])
def test_bad_lines_in_jsonl_each_fail_exactly_their_check(tmp_path: Path, fmt: str) -> None:
    result = _generate(tmp_path, fmt=fmt, bad_lines=33)
    assert set(result.bad_records) == set(BAD_RECORD_CODES)
    assert sum(result.bad_records.values()) == 33

    lines = _jsonl_lines(result.files[0])
    assert len(lines) == result.events + 33
    found = Counter(code for code in map(_classify_line, lines) if code is not None)
    assert found == Counter(result.bad_records)

    # Malformed records never reuse a messageId (or, without one, repeat a line).
    bad_lines = [raw for raw in lines if _classify_line(raw) is not None]
    assert len(set(bad_lines)) == 33
    valid_ids = {json.loads(raw)["messageId"] for raw in lines if _classify_line(raw) is None}
    for raw in bad_lines:
        for mid in UUID.findall(raw.decode("utf-8", errors="replace")):
            assert mid not in valid_ids


def test_bad_lines_in_parquet(tmp_path: Path) -> None:
    result = _generate(tmp_path, fmt="parquet", bad_lines=33)
    expressible = set(BAD_RECORD_CODES) - {
        "not_utf8",
        "invalid_json",
        "not_an_object",
        "line_too_long",
    }
    assert set(result.bad_records) == expressible
    assert sum(result.bad_records.values()) == 33

    rows = pq.read_table(result.files[0]).to_pylist()
    assert len(rows) == result.events + 33
    codes = [_classify_row(row) for row in rows]
    assert Counter(code for code in codes if code) == Counter(result.bad_records)
    bad_ids = {row["messageId"] for row, code in zip(rows, codes, strict=True) if code}
    valid_ids = {row["messageId"] for row, code in zip(rows, codes, strict=True) if not code}
    assert len(bad_ids) == 33 and not bad_ids & valid_ids


def test_bad_lines_in_csv(tmp_path: Path) -> None:
    result = _generate(tmp_path, fmt="csv", bad_lines=33)
    assert set(result.bad_records) == set(BAD_RECORD_CODES) - {"invalid_json", "not_an_object"}
    assert sum(result.bad_records.values()) == 33

    # surrogateescape keeps the invalid bytes visible as lone surrogates.
    text = result.files[0].read_bytes().decode("utf-8", errors="surrogateescape")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    assert reader.fieldnames == TABULAR_COLUMNS
    limit = csv.field_size_limit(4 * MAX_LINE_BYTES)  # the line_too_long rows
    try:
        rows = [{k: (v if v != "" else None) for k, v in row.items()} for row in reader]
    finally:
        csv.field_size_limit(limit)
    assert len(rows) == result.events + 33
    found = Counter(code for row in rows if (code := _classify_row(row, lines=True)) is not None)
    assert found == Counter(result.bad_records)


def test_malformed_records_do_not_change_the_valid_ones(tmp_path: Path) -> None:
    clean = _generate(tmp_path / "clean")
    dirty = _generate(tmp_path / "dirty", bad_lines=40)
    clean_lines = _jsonl_lines(clean.files[0])
    dirty_valid = [raw for raw in _jsonl_lines(dirty.files[0]) if _classify_line(raw) is None]
    assert clean_lines == dirty_valid
    assert (clean.events, clean.duplicates) == (dirty.events, dirty.duplicates)
