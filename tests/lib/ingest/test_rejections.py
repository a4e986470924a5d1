"""One test per rejection code: a single faulty record is rejected with that code, kept
verbatim with a message naming the field, and the counts still add up."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.lib.ingest import ingest_landing_folder, readers
from pipelines.lib.ingest.validate import FILE_LEVEL_CODES, ROW_CODES
from tests.conftest import write_jsonl

VALID = {
    "type": "track",
    "event": "Profile Completed",
    "userId": "u-1",
    "messageId": "m-valid",
    "timestamp": "2026-11-01T10:00:00.000Z",
    "receivedAt": "2026-11-01T10:00:00.250Z",
    "properties": {"plan": "team"},
    "context": {"library": {"name": "analytics.js"}},
}


def variant(**changes: object) -> dict:
    record = {**VALID, "messageId": "m-bad"}
    for key, value in changes.items():
        if value is ...:
            record.pop(key, None)
        else:
            record[key] = value
    return record


# code → (the faulty line, a phrase its message must contain)
ROW_CASES: dict[str, tuple[object, str]] = {
    "not_utf8": (b'{"type":"track","event":"Caf\xe9","userId":"u-1"}', "UTF-8"),
    "line_too_long": (variant(properties={"blob": "x" * 1_100_000}), "1 MiB line limit"),
    "record_too_large": (variant(properties={"blob": "x" * 40_000}), "32768 byte limit"),
    "invalid_json": ('{"type": "track", "event": "Profile', "not valid JSON"),
    "not_an_object": ('["track", "u-1"]', "got array"),
    "unknown_type": (variant(type="alias"), "'alias' is not one of"),
    "wrong_field_type": (variant(properties=["a", "b"]), "field properties must be a JSON object"),
    "non_finite_number": (
        json.dumps(variant(properties={"rate": float("nan")})),
        "field properties contains NaN or Infinity",
    ),
    "invalid_identity": (variant(userId="u-1\x07"), "userId contains control character U+0007"),
    "nul_character": (variant(properties={"plan": "pro\x00"}), "U+0000 (NUL) in properties"),
    "missing_identity": (variant(userId=..., anonymousId=""), "neither userId nor anonymousId"),
    "missing_event_name": (variant(event=None), "no event name"),
    "missing_timestamp": (variant(timestamp=...), "no timestamp"),
    "invalid_timestamp": (variant(timestamp="2026-13-45T00:00:00Z"), "'2026-13-45T00:00:00Z'"),
    "timestamp_out_of_range": (variant(timestamp="2099-01-01T00:00:00Z"), "before 2000 or more"),
}


def test_every_row_code_has_a_case() -> None:
    assert set(ROW_CASES) | {"malformed_csv_row"} == set(ROW_CODES)


def _only_rejection(warehouse) -> tuple:
    return warehouse.execute(
        "select line_number, error_code, error_message, raw_record from raw.events_rejected"
    ).fetchone()


def _file_counts(warehouse) -> tuple:
    return warehouse.execute(
        "select rows_read, rows_loaded, rows_rejected, rows_duplicate from raw.ingested_files"
    ).fetchone()


@pytest.mark.parametrize("code", sorted(ROW_CASES))
def test_row_rejection(code: str, landing: Path, warehouse) -> None:
    faulty, phrase = ROW_CASES[code]
    write_jsonl(landing / "events.jsonl", [VALID, faulty])

    summary = ingest_landing_folder(warehouse, landing)

    assert summary.errors == []
    line, error_code, message, raw = _only_rejection(warehouse)
    assert (line, error_code) == (2, code)
    assert phrase in message
    expected_raw = faulty if isinstance(faulty, (str, bytes)) else json.dumps(faulty)
    if isinstance(expected_raw, bytes):
        expected_raw = expected_raw.decode("utf-8", errors="backslashreplace")
    assert raw == expected_raw[: 64 * 1024]
    assert _file_counts(warehouse) == (2, 1, 1, 0)


def test_numeric_ids_are_coerced_to_strings(landing: Path, warehouse) -> None:
    write_jsonl(landing / "events.jsonl", [variant(userId=12345, messageId=987)])
    ingest_landing_folder(warehouse, landing)
    assert warehouse.execute("select event_id, user_id from raw.events").fetchone() == (
        "987",
        "12345",
    )


def test_reject_record_is_truncated_at_64_kib(landing: Path, warehouse) -> None:
    write_jsonl(landing / "events.jsonl", [variant(properties={"blob": "y" * 100_000})])
    ingest_landing_folder(warehouse, landing)
    _, code, _, raw = _only_rejection(warehouse)
    assert code == "record_too_large"
    assert len(raw) == 64 * 1024


def test_malformed_csv_row(landing: Path, warehouse) -> None:
    (landing / "events.csv").write_text(
        "messageId,type,event,userId,timestamp\n"
        "m1,track,Signed Up,u-1,2026-11-01T10:00:00Z\n"
        "m2,track,too,many,fields,here\n"
    )
    assert ingest_landing_folder(warehouse, landing).errors == []
    line, code, message, raw = _only_rejection(warehouse)
    assert (line, code) == (3, "malformed_csv_row")
    assert "wrong number of fields" in message
    assert raw == "m2,track,too,many,fields,here"
    assert _file_counts(warehouse) == (2, 1, 1, 0)


def test_not_utf8_in_csv(landing: Path, warehouse) -> None:
    (landing / "events.csv").write_bytes(
        b"messageId,type,event,userId,timestamp\nm1,track,Caf\xe9,u-1,2026-11-01T10:00:00Z\n"
    )
    assert ingest_landing_folder(warehouse, landing).errors == []
    line, code, _, raw = _only_rejection(warehouse)
    assert (line, code) == (2, "not_utf8")
    assert "\\xe9" in raw


# File-level faults: the file is recorded with one rejection and the run goes on.
def _garbage_parquet(landing: Path) -> None:
    (landing / "garbage.parquet").write_bytes(b"PAR1" + bytes(range(256)) * 10)


def _binary_jsonl(landing: Path) -> None:
    (landing / "binary.jsonl").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 50)


def _truncated_gzip(landing: Path) -> None:
    payload = gzip.compress(b"".join(json.dumps(VALID).encode() + b"\n" for _ in range(1)))
    (landing / "cut.jsonl.gz").write_bytes(payload[: len(payload) - 12])


def _gzip_too_large(landing: Path) -> None:
    # Over the limit the test sets (1 MiB), from a 3 KiB file.
    payload = json.dumps(VALID).encode() + b"\n" + b"\n" * 3 * 1024 * 1024
    (landing / "bomb.jsonl.gz").write_bytes(gzip.compress(payload))


def _parquet_missing_columns(landing: Path) -> None:
    pq.write_table(
        pa.table({"event": ["Signed Up"], "userId": ["u-1"]}), landing / "partial.parquet"
    )


FILE_CASES = {
    "unreadable_file (parquet)": (_garbage_parquet, "unreadable_file", "not a readable Parquet"),
    "unreadable_file (gzip)": (_truncated_gzip, "unreadable_file", "gzip stream is truncated"),
    "not_text": (_binary_jsonl, "not_text", "NUL bytes"),
    "missing_columns": (_parquet_missing_columns, "missing_columns", "type, timestamp"),
    "file_too_large": (_gzip_too_large, "file_too_large", "decompresses to more than 1 MiB"),
}


def test_every_file_code_has_a_case() -> None:
    assert {code for _, code, _ in FILE_CASES.values()} == set(FILE_LEVEL_CODES)


@pytest.mark.parametrize("case", sorted(FILE_CASES))
def test_file_rejection(
    case: str, landing: Path, warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_file, code, phrase = FILE_CASES[case]
    make_file(landing)
    monkeypatch.setattr(readers, "MAX_DECOMPRESSED_BYTES", 1024 * 1024)

    summary = ingest_landing_folder(warehouse, landing)

    assert summary.errors == []
    line, error_code, message, _ = _only_rejection(warehouse)
    assert (line, error_code) == (None, code)
    assert phrase in message
    read, loaded, rejected, duplicate = _file_counts(warehouse)
    assert read == loaded + rejected + duplicate
    assert rejected == 1
