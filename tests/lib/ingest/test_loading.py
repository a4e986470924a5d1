"""Loading behaviour: idempotency, duplicates, format parity, broken files beside good ones."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.lib.ingest import ingest_landing_folder
from pipelines.lib.ingest.checks import event_id_duplicates, unbalanced_files
from pipelines.lib.segment_spec import SEGMENT_COLUMNS
from tests.conftest import write_jsonl

COLUMNS = SEGMENT_COLUMNS


def sample_records() -> list[dict]:
    """A small varied set: identify, track, page, anonymous, numeric id, no messageId."""
    return [
        {
            "type": "page",
            "name": "Pricing",
            "anonymousId": "anon-1",
            "messageId": "m1",
            "timestamp": "2026-10-01T08:00:00.000Z",
            "receivedAt": "2026-10-01T08:00:00.400Z",
            "properties": {"path": "/pricing", "referrer": ""},
            "context": {"ip": "10.0.0.1"},
        },
        {
            "type": "identify",
            "userId": "u-1",
            "anonymousId": "anon-1",
            "messageId": "m2",
            "timestamp": "2026-10-01T08:05:00.000Z",
            "receivedAt": "2026-10-01T08:05:00.100Z",
            "traits": {"email": "ada@example.com", "timezone": "Europe/Paris", "is_admin": False},
        },
        {
            "type": "track",
            "event": "Signed Up",
            "userId": "u-1",
            "messageId": "m3",
            "timestamp": "2026-10-01T08:05:01.000Z",
            "receivedAt": "2026-10-01T08:05:01.300Z",
            "properties": {"plan": "team", "seats": 5, "nested": {"a": [1, 2]}},
        },
        {
            "type": "track",
            "event": "Profile Completed",
            "userId": "77",
            "messageId": "m4",
            "timestamp": "2026-10-02T09:00:00+02:00",
            "receivedAt": "2026-10-02T07:00:01.000Z",
            "properties": {},
        },
        # No messageId: the event id is a content hash, identical whatever the format.
        {
            "type": "track",
            "event": "Dashboard Viewed",
            "userId": "u-1",
            "timestamp": "2026-10-03T12:00:00.000Z",
            "receivedAt": "2026-10-03T12:00:00.500Z",
            "properties": {"dashboard": "Overview"},
        },
    ]


def as_table_rows(records: list[dict]) -> list[dict]:
    """The CSV/Parquet shape: every column a string, objects as JSON text."""
    rows = []
    for record in records:
        row = {}
        for column in COLUMNS:
            value = record.get(column)
            if isinstance(value, dict):
                value = json.dumps(value)
            row[column] = None if value is None else str(value)
        rows.append(row)
    return rows


def write_csv(path: Path, records: list[dict]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(as_table_rows(records))


def write_parquet(path: Path, records: list[dict]) -> None:
    rows = as_table_rows(records)
    pq.write_table(
        pa.table({c: pa.array([r[c] for r in rows], pa.string()) for c in COLUMNS}), path
    )


def events_rows(con) -> list[tuple]:
    """raw.events without the columns that say where and when a row was loaded."""
    return con.execute(
        """
        select event_id, event_type, event_name, user_id, anonymous_id, occurred_at,
               received_at, properties::varchar, traits::varchar, context::varchar
        from raw.events order by event_id
        """
    ).fetchall()


def table_counts(con) -> tuple:
    return con.execute(
        """
        select (select count(*) from raw.events), (select count(*) from raw.events_rejected),
               (select count(*) from raw.ingested_files)
        """
    ).fetchone()


def test_same_content_twice_changes_nothing(landing: Path, warehouse) -> None:
    write_jsonl(landing / "day1.jsonl", sample_records())
    first = ingest_landing_folder(warehouse, landing)
    assert first.total("rows_loaded") == 5
    before = (table_counts(warehouse), events_rows(warehouse))

    again = ingest_landing_folder(warehouse, landing)
    # A copy under another name is the same content: skipped as well.
    shutil.copy(landing / "day1.jsonl", landing / "day1-copy.jsonl")
    copy = ingest_landing_folder(warehouse, landing)

    assert again.total("rows_loaded") == 0 and copy.total("rows_loaded") == 0
    assert [f.skipped_reason is not None for f in copy.files] == [True, True]
    assert (table_counts(warehouse), events_rows(warehouse)) == before


def test_duplicates_within_and_across_files_are_counted(landing: Path, warehouse) -> None:
    records = sample_records()
    write_jsonl(landing / "a.jsonl", [*records, records[2], records[4]])
    # Another file re-delivers two events and adds one new one.
    extra = {**records[3], "messageId": "m-new"}
    write_jsonl(landing / "b.jsonl", [records[0], records[4], extra])

    summary = ingest_landing_folder(warehouse, landing)

    by_file = {Path(f.path).name: f for f in summary.files}
    assert (by_file["a.jsonl"].rows_loaded, by_file["a.jsonl"].rows_duplicate) == (5, 2)
    assert (by_file["b.jsonl"].rows_loaded, by_file["b.jsonl"].rows_duplicate) == (1, 2)
    assert event_id_duplicates(warehouse) == 0
    assert unbalanced_files(warehouse) == []


def test_jsonl_parquet_csv_load_identical_rows(tmp_path: Path) -> None:
    from pipelines.lib.warehouse import open_warehouse

    records = sample_records()
    writers = {
        "jsonl": lambda p: write_jsonl(p, records),
        "jsonl.gz": lambda p: p.write_bytes(
            gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in records))
        ),
        "parquet": lambda p: write_parquet(p, records),
        "csv": lambda p: write_csv(p, records),
    }
    loaded = {}
    for fmt, write in writers.items():
        folder = tmp_path / fmt / "landing"
        folder.mkdir(parents=True)
        write(folder / f"events.{fmt}")
        with open_warehouse(tmp_path / fmt / "warehouse.duckdb") as con:
            summary = ingest_landing_folder(con, folder)
            assert summary.errors == [] and summary.total("rows_rejected") == 0, fmt
            loaded[fmt] = events_rows(con)

    assert len(loaded["jsonl"]) == len(records)
    for fmt in ("jsonl.gz", "parquet", "csv"):
        assert loaded[fmt] == loaded["jsonl"], fmt


def test_broken_files_do_not_stop_good_ones(landing: Path, warehouse) -> None:
    records = sample_records()
    write_jsonl(landing / "a_good.jsonl", records[:3])
    (landing / "b_garbage.parquet").write_bytes(b"this is not parquet at all" * 100)
    (landing / "c_binary.jsonl").write_bytes(bytes(range(256)) * 64)
    good_gzip = gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in records[3:]))
    (landing / "d_truncated.jsonl.gz").write_bytes(good_gzip[:-20])
    pq.write_table(pa.table({"event": ["x"]}), landing / "e_missing_columns.parquet")
    write_csv(landing / "f_good.csv", [{**records[4], "messageId": "m-csv"}])

    summary = ingest_landing_folder(warehouse, landing)

    assert summary.errors == []
    assert len(summary.ingested) == 6
    assert warehouse.execute("select count(*) from raw.events").fetchone()[0] >= 4
    file_faults = dict(
        warehouse.execute(
            """
        select regexp_extract(source_file, '[^/]+$'), error_code
        from raw.events_rejected where line_number is null
        """
        ).fetchall()
    )
    assert file_faults == {
        "b_garbage.parquet": "unreadable_file",
        "c_binary.jsonl": "not_text",
        "d_truncated.jsonl.gz": "unreadable_file",
        "e_missing_columns.parquet": "missing_columns",
    }
    assert unbalanced_files(warehouse) == []


def test_truncated_gzip_keeps_the_lines_before_the_cut(landing: Path, warehouse) -> None:
    lines = [
        {
            "type": "track",
            "event": "Report Viewed",
            "userId": f"u-{i}",
            "messageId": f"g{i}",
            "timestamp": "2026-10-01T00:00:00Z",
            "properties": {"i": i, "pad": "x" * 200},
        }
        for i in range(3000)
    ]
    payload = gzip.compress(b"".join(json.dumps(r).encode() + b"\n" for r in lines))
    (landing / "big.jsonl.gz").write_bytes(payload[: len(payload) // 2])

    summary = ingest_landing_folder(warehouse, landing)

    report = summary.files[0]
    assert 0 < report.rows_loaded < 3000
    assert report.rejections == {"unreadable_file": 1}
    assert report.balanced
