"""Hostile landing files and values: each class of poison is rejected with its reason, the
good records beside it are loaded, counts add up, and nothing hangs or grows without bound.

Classes: damaged gzip, byte-order marks, size bounds (gzip bombs, giant lines, Parquet that
decodes huge), files that failed are recorded and not retried, links and special files,
line splitting on b"\\n" only, and values (UTC offsets, receivedAt, NaN/Infinity, ids).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import threading
import tracemalloc
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.lib.ingest import files, ingest_landing_folder, load, parquet_reader, readers
from pipelines.lib.ingest.checks import unbalanced_files
from pipelines.lib.ingest.files import LandingFile
from pipelines.lib.ingest.report import summary_line
from pipelines.lib.ingest.watch import find_changed_files
from pipelines.lib.segment_spec import SEGMENT_COLUMNS

REFERENCE = datetime(2026, 11, 24, tzinfo=UTC)
MiB = 1024 * 1024


def good(i: int, **changes: object) -> dict:
    record: dict = {
        "type": "track",
        "event": "Report Viewed",
        "userId": f"u-{i}",
        "messageId": f"good-{i}",
        "timestamp": "2026-11-01T10:00:00Z",
        "receivedAt": "2026-11-01T10:00:01Z",
        "properties": {"i": i},
    }
    for key, value in changes.items():
        if value is ...:
            record.pop(key, None)
        else:
            record[key] = value
    return record


def line(record: dict) -> bytes:
    return json.dumps(record).encode() + b"\n"


def ingest(warehouse, landing: Path):
    summary = ingest_landing_folder(warehouse, landing, reference_time=REFERENCE)
    assert summary.errors == []
    return summary


def event_ids(warehouse) -> set[str]:
    return {row[0] for row in warehouse.execute("select event_id from raw.events").fetchall()}


def rejections(warehouse) -> list[tuple]:
    """(file name, line, code, message, raw) per rejection, in file and line order."""
    return warehouse.execute(
        """
        select regexp_extract(source_file, '[^/]+$'), line_number, error_code, error_message,
               raw_record
        from raw.events_rejected order by 1, line_number nulls last
        """
    ).fetchall()


def assert_counts_add_up(warehouse, summary) -> None:
    """Per file and in total: read = loaded + rejected + duplicate, also as stored."""
    for report in summary.ingested:
        assert report.balanced, report
    assert unbalanced_files(warehouse) == []
    stored = warehouse.execute(
        "select coalesce(sum(rows_read), 0), coalesce(sum(rows_loaded), 0),"
        " coalesce(sum(rows_rejected), 0) from raw.ingested_files"
    ).fetchone()
    events = warehouse.execute("select count(*) from raw.events").fetchone()[0]
    rejected = warehouse.execute("select count(*) from raw.events_rejected").fetchone()[0]
    assert stored[1] == events and stored[2] == rejected


def write_csv(path: Path, rows: list[dict], *, prefix: bytes = b"") -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SEGMENT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                key: json.dumps(value) if isinstance(value, dict) else value
                for key, value in row.items()
            }
        )
    path.write_bytes(prefix + buffer.getvalue().encode())


def parquet_table(rows: list[dict]) -> pa.Table:
    columns = {}
    for name in SEGMENT_COLUMNS:
        values = [row.get(name) for row in rows]
        columns[name] = pa.array(
            [
                json.dumps(v) if isinstance(v, dict) else (None if v is None else str(v))
                for v in values
            ],
            pa.string(),
        )
    return pa.table(columns)


# -- 1. a damaged gzip keeps every complete line before the damage ---------------------------

GZIP_RECORDS = [good(i, properties={"i": i, "pad": "x" * 300}) for i in range(2000)]
GZIP_PAYLOAD = b"".join(line(r) for r in GZIP_RECORDS)
GZIP = gzip.compress(GZIP_PAYLOAD, mtime=0)


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


GZIP_DAMAGE: dict[str, Callable[[], bytes]] = {
    "cut in the middle": lambda: GZIP[: len(GZIP) * 2 // 3],
    "cut near the start": lambda: GZIP[:2000],
    "trailer cut off": lambda: GZIP[:-4],
    "checksum damaged": lambda: _flip(GZIP, len(GZIP) - 6),
    "garbage after the end": lambda: GZIP + b"this is not gzip",
    "second member cut": lambda: (
        gzip.compress(GZIP_PAYLOAD[: len(GZIP_PAYLOAD) // 2], mtime=0)
        + gzip.compress(GZIP_PAYLOAD[len(GZIP_PAYLOAD) // 2 :], mtime=0)[:-3000]
    ),
}


def _decodable_lines(data: bytes) -> int:
    """Complete lines zlib can decode from `data` before it fails (an independent oracle:
    byte by byte, member after member)."""
    out = bytearray()
    rest = data
    while rest:
        decoder = zlib.decompressobj(wbits=31)
        consumed = 0
        try:
            for consumed in range(1, len(rest) + 1):
                out += decoder.decompress(rest[consumed - 1 : consumed])
                if decoder.eof:
                    break
        except zlib.error:
            break
        if not decoder.eof:
            break
        rest = decoder.unused_data + rest[consumed:]
    return bytes(out).count(b"\n")


@pytest.mark.parametrize("damage", sorted(GZIP_DAMAGE))
def test_damaged_gzip_keeps_every_complete_line(damage: str, landing: Path, warehouse) -> None:
    data = GZIP_DAMAGE[damage]()
    (landing / "events.jsonl.gz").write_bytes(data)
    expected = _decodable_lines(data)
    assert expected > 0

    summary = ingest(warehouse, landing)

    [report] = summary.files
    assert report.rows_loaded == expected
    assert event_ids(warehouse) == {f"good-{i}" for i in range(expected)}
    [(_, number, code, message, _)] = rejections(warehouse)
    assert (number, code) == (None, "unreadable_file")
    assert f"after line {expected}" in message
    assert report.rows_read == expected + 1
    assert_counts_add_up(warehouse, summary)


# -- 2. byte-order marks ---------------------------------------------------------------------

BOM = b"\xef\xbb\xbf"


def _csv_bom(landing: Path) -> None:
    # A re-send of m-1 (later receivedAt): with the messageId column read it is a duplicate.
    rows = [good(1), good(1, receivedAt="2026-11-01T10:05:00Z"), good(2)]
    write_csv(landing / "events.csv", rows, prefix=BOM)


def _csv_bom_quoted_blank_names(landing: Path) -> None:
    header = '"messageId", type ,event,\tuserId,timestamp,receivedAt\n'
    rows = "".join(
        f"{r['messageId']},track,Report Viewed,{r['userId']},{r['timestamp']},{r['receivedAt']}\n"
        for r in (good(1), good(1, receivedAt="2026-11-01T10:05:00Z"), good(2))
    )
    (landing / "events.csv").write_bytes(BOM + (header + rows).encode())


def _jsonl_bom(landing: Path) -> None:
    records = [good(1), good(1, receivedAt="2026-11-01T10:05:00Z"), good(2)]
    (landing / "events.jsonl").write_bytes(BOM + b"".join(line(r) for r in records))


def _jsonl_concatenated_boms(landing: Path) -> None:
    # Two "UTF-8 with BOM" files joined with cat: the second BOM starts line 3.
    first = BOM + line(good(1)) + line(good(1, receivedAt="2026-11-01T10:05:00Z"))
    (landing / "events.jsonl").write_bytes(first + BOM + line(good(2)))


def _jsonl_gz_bom(landing: Path) -> None:
    records = [good(1), good(1, receivedAt="2026-11-01T10:05:00Z"), good(2)]
    payload = BOM + b"".join(line(r) for r in records)
    (landing / "events.jsonl.gz").write_bytes(gzip.compress(payload))


def _parquet_bom_column(landing: Path) -> None:
    # pandas reading a BOM CSV without encoding="utf-8-sig", then to_parquet.
    table = parquet_table([good(1), good(1, receivedAt="2026-11-01T10:05:00Z"), good(2)])
    table = table.rename_columns(["\ufeffmessageId", *table.column_names[1:]])
    pq.write_table(table, landing / "events.parquet")


BOM_CASES = {
    "csv": _csv_bom,
    "csv, quoted and blank-padded names": _csv_bom_quoted_blank_names,
    "jsonl": _jsonl_bom,
    "jsonl, files concatenated": _jsonl_concatenated_boms,
    "jsonl.gz": _jsonl_gz_bom,
    "parquet column name": _parquet_bom_column,
}


@pytest.mark.parametrize("case", sorted(BOM_CASES))
def test_byte_order_mark_is_not_part_of_the_data(case: str, landing: Path, warehouse) -> None:
    BOM_CASES[case](landing)

    summary = ingest(warehouse, landing)

    # messageId was read: the re-send is a duplicate, and ids are the messageIds.
    assert event_ids(warehouse) == {"good-1", "good-2"}
    [report] = summary.files
    assert (report.rows_read, report.rows_loaded, report.rows_duplicate) == (3, 2, 1)
    assert rejections(warehouse) == []
    assert_counts_add_up(warehouse, summary)


@pytest.mark.parametrize(
    ("mark", "encoding", "name"),
    [
        (b"\xff\xfe", "utf-16-le", "events.jsonl"),
        (b"\xfe\xff", "utf-16-be", "events.jsonl"),
        (b"\xff\xfe", "utf-16-le", "events.csv"),
        (b"\xff\xfe\x00\x00", "utf-32-le", "events.jsonl"),
    ],
)
def test_other_encodings_are_named(
    mark: bytes, encoding: str, name: str, landing: Path, warehouse
) -> None:
    text = "messageId,type,userId,timestamp\n" if name.endswith(".csv") else ""
    text += json.dumps(good(1)) + "\n"
    (landing / name).write_bytes(mark + text.encode(encoding))
    (landing / "other.jsonl").write_bytes(line(good(2)))

    summary = ingest(warehouse, landing)

    [(_, number, code, message, _)] = rejections(warehouse)
    label = encoding.upper().replace("-", " ").replace("UTF ", "UTF-")
    assert (number, code) == (None, "not_text")
    assert f"{label} byte-order mark" in message and "save it as UTF-8" in message
    assert event_ids(warehouse) == {"good-2"}
    assert_counts_add_up(warehouse, summary)


# -- 3. bounded: bombs, giant lines, Parquet that decodes huge --------------------------------


class ChunkSpy:
    """Records the largest Arrow chunk handed to the loader."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.largest = 0
        original = load._load_chunk

        def spy(con, batch, *args, **kwargs):
            self.largest = max(self.largest, batch.table.nbytes)
            return original(con, batch, *args, **kwargs)

        monkeypatch.setattr(load, "_load_chunk", spy)


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch) -> ChunkSpy:
    """Limits and buffers scaled down so a small, fast file exceeds them many times over
    (the hashing and CSV block buffers are fixed sizes, whatever the file holds)."""
    monkeypatch.setattr(readers, "MAX_DECOMPRESSED_BYTES", 8 * MiB, raising=False)
    monkeypatch.setattr(readers, "CHUNK_BYTES", 2 * MiB)
    monkeypatch.setattr(readers, "CHUNK_LINES", 50_000, raising=False)
    monkeypatch.setattr(readers, "CSV_BLOCK_BYTES", 2 * MiB, raising=False)
    monkeypatch.setattr(files, "_HASH_CHUNK", MiB)
    return ChunkSpy(monkeypatch)


def _traced_ingest(warehouse, landing: Path):
    tracemalloc.start()
    try:
        summary = ingest(warehouse, landing)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return summary, peak


def _gzip_stream(parts: list[bytes], filler: bytes, filler_bytes: int) -> bytes:
    """parts[0], then `filler` repeated to `filler_bytes`, then parts[1:], compressed in
    streaming fashion (the expanded bytes are never held here either)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [compressor.compress(parts[0])]
    block = filler * (MiB // len(filler))
    for _ in range(filler_bytes // len(block)):
        out.append(compressor.compress(block))
    out.extend(compressor.compress(part) for part in parts[1:])
    out.append(compressor.flush())
    return b"".join(out)


def test_gzip_bomb_of_empty_lines_stops_at_the_limit(
    landing: Path, warehouse, small_limits: ChunkSpy
) -> None:
    # 64 KiB on disk, 64 MiB of line breaks once expanded: 8x the (lowered) limit.
    data = _gzip_stream([line(good(1)) + line(good(2)), line(good(3))], b"\n", 64 * MiB)
    assert len(data) < 256 * 1024
    (landing / "bomb.jsonl.gz").write_bytes(data)
    (landing / "other.jsonl").write_bytes(line(good(4)))

    summary, peak = _traced_ingest(warehouse, landing)

    assert event_ids(warehouse) == {"good-1", "good-2", "good-4"}
    [(name, number, code, message, _)] = rejections(warehouse)
    assert (name, number, code) == ("bomb.jsonl.gz", None, "file_too_large")
    assert "bomb.jsonl.gz decompresses to more than 8 MiB" in message
    assert peak < 12 * MiB, peak  # the limit itself is never held, let alone the bomb
    assert small_limits.largest <= 4 * MiB
    assert_counts_add_up(warehouse, summary)


def test_gzip_bomb_without_line_breaks_is_one_long_line(
    landing: Path, warehouse, small_limits: ChunkSpy
) -> None:
    data = _gzip_stream([line(good(1)) + b'{"type": "track", "pad": "'], b"a", 32 * MiB)
    (landing / "bomb.jsonl.gz").write_bytes(data)

    summary, peak = _traced_ingest(warehouse, landing)

    assert event_ids(warehouse) == {"good-1"}
    found = [(number, code) for _, number, code, _, _ in rejections(warehouse)]
    assert found == [(2, "line_too_long"), (None, "file_too_large")]
    assert peak < 12 * MiB, peak
    assert_counts_add_up(warehouse, summary)


def _jsonl_giant_middle_line(landing: Path) -> tuple[set[str], list[tuple]]:
    giant = line(good(99, properties={"log": "x" * (20 * MiB)}))
    (landing / "events.jsonl").write_bytes(line(good(1)) + giant + line(good(2)))
    return {"good-1", "good-2"}, [(2, "line_too_long")]


def _jsonl_no_line_break_at_all(landing: Path) -> tuple[set[str], list[tuple]]:
    (landing / "events.jsonl").write_bytes(b'{"type":"track","pad":"' + b"y" * (20 * MiB))
    (landing / "other.jsonl").write_bytes(line(good(1)))
    return {"good-1"}, [(1, "line_too_long")]


def _jsonl_many_long_lines(landing: Path) -> tuple[set[str], list[tuple]]:
    long = b'{"pad":"' + b"z" * (MiB + 10) + b'"}\n'
    (landing / "events.jsonl").write_bytes(line(good(1)) + long * 24 + line(good(2)))
    return {"good-1", "good-2"}, [(n, "line_too_long") for n in range(2, 26)]


def _csv_giant_middle_line(landing: Path) -> tuple[set[str], list[tuple]]:
    write_csv(
        landing / "events.csv",
        [good(1), good(99, properties={"log": "x" * (20 * MiB)}), good(2)],
    )
    return {"good-1", "good-2"}, [(3, "line_too_long")]


def _csv_row_without_line_break(landing: Path) -> tuple[set[str], list[tuple]]:
    write_csv(landing / "events.csv", [good(1)])
    with (landing / "events.csv").open("ab") as handle:
        handle.write(b"good-9,track,Report Viewed,," + b"w" * (20 * MiB))
    return {"good-1"}, [(3, "line_too_long")]


GIANT_LINES = {
    "jsonl, a giant line between good ones": _jsonl_giant_middle_line,
    "jsonl, no line break at all": _jsonl_no_line_break_at_all,
    "jsonl, many lines over the limit": _jsonl_many_long_lines,
    "csv, a giant row between good ones": _csv_giant_middle_line,
    "csv, a giant last row without line break": _csv_row_without_line_break,
}


@pytest.mark.parametrize("case", sorted(GIANT_LINES))
def test_giant_line_is_rejected_without_holding_it(
    case: str, landing: Path, warehouse, small_limits: ChunkSpy
) -> None:
    loaded, rejected = GIANT_LINES[case](landing)

    summary, peak = _traced_ingest(warehouse, landing)

    assert event_ids(warehouse) == loaded
    found = rejections(warehouse)
    assert [(number, code) for _, number, code, _, _ in found] == rejected
    for _, number, _, message, raw in found:
        assert f"line {number} is " in message and "over the 1 MiB line limit" in message
        assert len(raw) <= 64 * 1024
    # A few chunks' worth (2 MiB each here), never a whole 20 MiB line or the 24 MiB file.
    assert peak < 12 * MiB, peak
    assert small_limits.largest <= 2 * MiB
    assert_counts_add_up(warehouse, summary)


def test_parquet_whose_repeated_value_decodes_huge_is_read_in_slices(
    landing: Path, warehouse, small_limits: ChunkSpy
) -> None:
    # 300 rows share one 100 KB value: dictionary-encoded, the file is small; expanded in
    # one batch it would be 30 MB. Each row is over the record limit, the good ones load.
    big = '{"log": "' + "x" * 100_000 + '"}'
    rows = [good(i, properties={"i": i}) for i in range(3)]
    rows += [{**good(1000 + i), "properties": None, "traits": big} for i in range(300)]
    table = parquet_table(rows)
    pq.write_table(table, landing / "events.parquet")
    assert (landing / "events.parquet").stat().st_size < MiB

    summary = ingest(warehouse, landing)

    assert event_ids(warehouse) == {"good-0", "good-1", "good-2"}
    [report] = summary.files
    assert report.rejections == {"record_too_large": 300}
    assert small_limits.largest <= 3 * MiB, small_limits.largest
    assert_counts_add_up(warehouse, summary)


@pytest.mark.parametrize("cell_mib", [3, 20])
def test_parquet_huge_cell_is_rejected_unexpanded(
    cell_mib: int,
    landing: Path,
    warehouse,
    small_limits: ChunkSpy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(readers, "MAX_DECOMPRESSED_BYTES", 4 * 1024**3, raising=False)
    rows = [good(1), good(99, properties={"log": "q" * (cell_mib * MiB)}), good(2)]
    pq.write_table(parquet_table(rows), landing / "events.parquet")

    summary = ingest(warehouse, landing)

    assert event_ids(warehouse) == {"good-1", "good-2"}
    [(_, number, code, message, raw)] = rejections(warehouse)
    assert (number, code) == (2, "record_too_large")
    assert "over the 32768 byte limit" in message
    assert raw.startswith('{"messageId":"good-99",') and len(raw) <= 64 * 1024
    assert small_limits.largest < MiB, small_limits.largest  # the cell never reaches SQL
    assert_counts_add_up(warehouse, summary)


def test_parquet_over_the_size_limit_keeps_the_row_groups_before(
    landing: Path, warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [good(i, properties={"pad": f"{i}-" + "p" * 2000}) for i in range(3000)]
    pq.write_table(parquet_table(rows), landing / "events.parquet", row_group_size=1000)
    first_group = pq.ParquetFile(landing / "events.parquet").metadata.row_group(0)
    limit = first_group.total_byte_size + 1000
    monkeypatch.setattr(readers, "MAX_DECOMPRESSED_BYTES", limit, raising=False)

    summary = ingest(warehouse, landing)

    assert event_ids(warehouse) == {f"good-{i}" for i in range(1000)}
    [(_, number, code, message, _)] = rejections(warehouse)
    assert (number, code) == (None, "file_too_large")
    assert "rows 1-1000 were read" in message
    assert_counts_add_up(warehouse, summary)


# -- 4. a file that failed is recorded, and skipped until its content changes ----------------


def _truncated_gzip(landing: Path) -> None:
    (landing / "events.jsonl.gz").write_bytes(GZIP[:5000])


def _not_gzip(landing: Path) -> None:
    (landing / "events.jsonl.gz").write_bytes(b"".join(line(good(i)) for i in range(3)))


def _gzip_bomb(landing: Path) -> None:
    data = _gzip_stream([line(good(1))], b"\n", 16 * MiB)
    (landing / "events.jsonl.gz").write_bytes(data)


def _parquet_duplicate_columns(landing: Path) -> None:
    columns = [["track"], ["2026-11-01T10:00:00Z"], ["u1"], ["u2"]]
    table = pa.Table.from_arrays(
        [pa.array(c) for c in columns], names=["type", "timestamp", "userId", "userId"]
    )
    pq.write_table(table, landing / "events.parquet")


def _parquet_cut(landing: Path) -> None:
    target = landing / "events.parquet"
    pq.write_table(parquet_table([good(i) for i in range(50)]), target)
    target.write_bytes(target.read_bytes()[:-100])


def _csv_header_too_long(landing: Path) -> None:
    header = ",".join(["type", "timestamp", "userId"] + [f"c{i}" * 20 for i in range(2000)])
    (landing / "events.csv").write_text(header + "\ntrack,2026-11-01T10:00:00Z,u1\n")


FAILED_FILES = {
    "gzip cut short": (_truncated_gzip, "unreadable_file"),
    "not gzip at all": (_not_gzip, "unreadable_file"),
    "gzip bomb": (_gzip_bomb, "file_too_large"),
    "parquet with a column twice": (_parquet_duplicate_columns, "missing_columns"),
    "parquet cut short": (_parquet_cut, "unreadable_file"),
    "csv header over 64 KiB": (_csv_header_too_long, "missing_columns"),
}


@pytest.mark.parametrize("case", sorted(FAILED_FILES))
def test_failed_file_is_recorded_and_not_retried_until_it_changes(
    case: str, landing: Path, warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readers, "MAX_DECOMPRESSED_BYTES", 8 * MiB, raising=False)
    make, code = FAILED_FILES[case]
    make(landing)
    [path] = landing.iterdir()

    first = ingest(warehouse, landing)
    fault = [r for r in rejections(warehouse) if r[1] is None]
    assert [(r[0], r[2]) for r in fault] == [(path.name, code)]
    assert_counts_add_up(warehouse, first)
    before = rejections(warehouse), event_ids(warehouse)

    again = ingest(warehouse, landing)

    [report] = again.files
    assert "stopped at a file-level fault" in report.skipped_reason
    assert code in report.skipped_reason and "once its content changes" in report.skipped_reason
    assert report.skipped_code == "already_ingested"
    assert (rejections(warehouse), event_ids(warehouse)) == before
    assert "already ingested, skipped: 1" in summary_line(again)

    # New content is a new file: read again.
    path.write_bytes(path.read_bytes() + b"\n")
    third = ingest(warehouse, landing)
    assert [f.skipped_reason for f in third.files] == [None]


@pytest.mark.parametrize("arrow_type", [pa.float16(), pa.decimal256(40, 2)])
def test_parquet_column_types_duckdb_cannot_scan(
    arrow_type: pa.DataType, landing: Path, warehouse
) -> None:
    import decimal

    import numpy as np

    values = (
        pa.array(np.array([1.5, 2.5], dtype=np.float16), arrow_type)
        if pa.types.is_float16(arrow_type)
        else pa.array([decimal.Decimal("1.5"), decimal.Decimal("2.5")], arrow_type)
    )
    table = pa.table(
        {
            "type": ["track", "track"],
            "event": ["E", "E"],
            "timestamp": ["2026-11-01T10:00:00Z"] * 2,
            "userId": values,
        }
    )
    pq.write_table(table, landing / "typed.parquet")
    (landing / "other.jsonl").write_bytes(line(good(1)))

    summary = ingest(warehouse, landing)

    assert event_ids(warehouse) == {"good-1"}
    assert [code for _, _, code, _, _ in rejections(warehouse)] == ["wrong_field_type"] * 2
    assert_counts_add_up(warehouse, summary)


def test_a_column_type_the_warehouse_cannot_scan_is_a_recorded_fault(
    landing: Path, warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    # Without the reader's widening, DuckDB refuses a float16 column: still recorded.
    def expand_only(column: pa.Array) -> pa.Array:
        return column.dictionary_decode() if pa.types.is_dictionary(column.type) else column

    monkeypatch.setattr(parquet_reader, "_scannable", expand_only)
    values = pa.array(np.array([1.5], dtype=np.float16), pa.float16())
    table = pa.table({"type": ["track"], "timestamp": ["2026-11-01T10:00:00Z"], "userId": values})
    pq.write_table(table, landing / "typed.parquet")

    summary = ingest(warehouse, landing)

    [(_, number, code, message, _)] = rejections(warehouse)
    assert (number, code) == (None, "unreadable_file")
    assert "typed.parquet has a column of a type the warehouse cannot read" in message
    assert_counts_add_up(warehouse, summary)
    assert "file-level fault" in ingest(warehouse, landing).files[0].skipped_reason


# -- 5. links and special files are never followed or opened ---------------------------------


def _run_bounded(work: Callable[[], object], seconds: float = 60) -> object:
    """Run `work` in a thread; fail (instead of hanging the suite) if it blocks."""
    result: list[object] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(work())
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "ingest blocked on a special file"
    if errors:
        raise errors[0]
    return result[0]


def _outside(landing: Path) -> Path:
    outside = landing.parent / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "secret.jsonl").write_bytes(line(good(666)))
    return outside


def _link_outside(landing: Path) -> str:
    os.symlink(_outside(landing) / "secret.jsonl", landing / "linked.jsonl")
    return "linked.jsonl"


def _relative_link_out(landing: Path) -> str:
    _outside(landing)
    os.symlink("../outside/secret.jsonl", landing / "relative.jsonl")
    return "relative.jsonl"


def _passwd_as_csv(landing: Path) -> str:
    os.symlink("/etc/passwd", landing / "users.csv")
    return "users.csv"


def _passwd_as_jsonl_in_subfolder(landing: Path) -> str:
    os.symlink("/etc/passwd", landing / "nested" / "passwd.jsonl")
    return "passwd.jsonl"


def _dev_zero(landing: Path) -> str:
    os.symlink("/dev/zero", landing / "zero.jsonl.gz")
    return "zero.jsonl.gz"


def _dangling(landing: Path) -> str:
    os.symlink(landing / "gone", landing / "gone.jsonl")
    return "gone.jsonl"


def _linked_folder(landing: Path) -> str:
    os.symlink(_outside(landing), landing / "more")
    return "more"


def _fifo(landing: Path) -> str:
    os.mkfifo(landing / "pipe.jsonl")
    return "pipe.jsonl"


def _link_to_fifo(landing: Path) -> str:
    os.mkfifo(_outside(landing) / "pipe")
    os.symlink(landing.parent / "outside" / "pipe", landing / "pipe.ndjson")
    return "pipe.ndjson"


LINKS: dict[str, Callable[[Path], str]] = {
    "link to a file outside": _link_outside,
    "relative link out of the folder": _relative_link_out,
    "link to /etc/passwd as csv": _passwd_as_csv,
    "link to /etc/passwd in a subfolder": _passwd_as_jsonl_in_subfolder,
    "link to /dev/zero": _dev_zero,
    "dangling link": _dangling,
    "linked folder": _linked_folder,
    "fifo": _fifo,
    "link to a fifo": _link_to_fifo,
}


@pytest.mark.parametrize("case", sorted(LINKS))
def test_links_and_special_files_are_reported_not_read(case: str, landing: Path, warehouse) -> None:
    (landing / "nested").mkdir()
    (landing / "a_good.jsonl").write_bytes(line(good(1)))
    (landing / "nested" / "b_good.jsonl").write_bytes(line(good(2)))
    name = LINKS[case](landing)

    summary = _run_bounded(lambda: ingest(warehouse, landing))

    assert event_ids(warehouse) == {"good-1", "good-2"}
    assert rejections(warehouse) == []  # nothing of a target reached the warehouse
    [skipped] = [f for f in summary.files if f.skipped_reason is not None]
    assert Path(skipped.path).name == name
    assert skipped.skipped_code in ("symlink", "not_regular_file")
    assert (
        "not followed" in skipped.skipped_reason or "not a regular file" in skipped.skipped_reason
    )
    assert "not read: 1" in summary_line(summary)
    assert_counts_add_up(warehouse, summary)
    # The sensor passes over it too, and says so.
    watched = _run_bounded(lambda: find_changed_files(landing, None))
    assert sorted(Path(c.path).name for c in watched.changed) == ["a_good.jsonl", "b_good.jsonl"]
    assert name in find_changed_files(landing, watched.cursor).skip_reason(landing)


def test_a_file_swapped_for_a_link_after_the_scan_is_not_followed(landing: Path, warehouse) -> None:
    # The scan saw a regular file; by the time it is opened it is a link to /etc/passwd.
    path = landing / "events.csv"
    swapped = LandingFile(path, "csv", 100, 0)
    os.symlink("/etc/passwd", path)

    summary = load.ingest_files(warehouse, [swapped], reference_time=REFERENCE)

    assert summary.errors == []
    assert rejections(warehouse) == [] and event_ids(warehouse) == set()
    [report] = summary.files
    assert report.skipped_code == "symlink"


def test_a_file_that_cannot_be_opened_does_not_stop_the_others(
    landing: Path, warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Root reads any file, so the refusal is simulated where the loader opens files.
    (landing / "a_good.jsonl").write_bytes(line(good(1)))
    (landing / "b_private.jsonl").write_bytes(line(good(2)))
    opener = load.open_landing_file

    def refuse_private(path: Path):
        if path.name == "b_private.jsonl":
            raise PermissionError(13, "Permission denied", str(path))
        return opener(path)

    monkeypatch.setattr(load, "open_landing_file", refuse_private, raising=False)

    summary = ingest(warehouse, landing)

    assert event_ids(warehouse) == {"good-1"}
    [skipped] = [f for f in summary.files if f.skipped_reason is not None]
    assert Path(skipped.path).name == "b_private.jsonl"
    assert "cannot be opened (Permission denied)" in skipped.skipped_reason
    assert "not read: 1 (cannot be opened: 1)" in summary_line(summary)
    assert_counts_add_up(warehouse, summary)


# -- 6. JSON Lines are split on b"\n" only -----------------------------------------------------

SEPARATORS = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\r"]


def test_only_line_feed_ends_a_json_line(landing: Path, warehouse) -> None:
    lines: list[bytes] = []
    loaded: set[str] = set()
    invalid: list[int] = []
    for k, char in enumerate(SEPARATORS):
        # Escaped (always valid JSON), raw where JSON allows it, raw where it does not.
        escaped = good(100 + k, event=f"Report{char}Viewed")
        lines.append(json.dumps(escaped).encode())
        loaded.add(escaped["messageId"])
        raw = good(200 + k, event=f"Report{char}Viewed")
        lines.append(
            json.dumps(raw, ensure_ascii=False).replace(json.dumps(char)[1:-1], char).encode()
        )
        if ord(char) < 0x20:
            invalid.append(len(lines))  # a raw control character is not JSON: one bad record
        else:
            loaded.add(raw["messageId"])
    lines.append(b'{"type": "track"}\r{"type": "track"}')  # \r alone does not end a line
    invalid.append(len(lines))
    body = b"\r\n".join(lines[:3]) + b"\r\n" + b"\n".join(lines[3:]) + b"\n"  # CRLF works too
    (landing / "events.jsonl").write_bytes(body)

    summary = ingest(warehouse, landing)

    [report] = summary.files
    assert report.rows_read == len(lines)
    assert event_ids(warehouse) == loaded
    assert [(number, code) for _, number, code, _, _ in rejections(warehouse)] == [
        (number, "invalid_json") for number in invalid
    ]
    names = {row[0] for row in warehouse.execute("select event_name from raw.events").fetchall()}
    assert names == {f"Report{char}Viewed" for char in SEPARATORS}
    assert_counts_add_up(warehouse, summary)


def test_csv_cells_keep_unicode_line_separators(landing: Path, warehouse) -> None:
    chars = ["\x85", "\u2028", "\u2029", "\x0b", "\x0c", "\x1c"]
    write_csv(
        landing / "events.csv",
        [good(k, event=f"Report{char}Viewed") for k, char in enumerate(chars)],
    )

    summary = ingest(warehouse, landing)

    names = {row[0] for row in warehouse.execute("select event_name from raw.events").fetchall()}
    assert names == {f"Report{char}Viewed" for char in chars}
    assert_counts_add_up(warehouse, summary)


# -- 7. values: UTC offsets, receivedAt, NaN/Infinity, identities ------------------------------

# (record changes, expected code or None when loaded, phrase of the message). "@NaN@" in a
# JSON text stands for a token JSON does not have, written as such.
VALUE_CASES: dict[str, tuple[dict, str | None, str]] = {
    "offset +18:00": ({"timestamp": "2026-11-01T10:00:00+18:00"}, None, ""),
    "offset +14:00": ({"timestamp": "2026-11-01T10:00:00+14:00"}, None, ""),
    "offset -12:00": ({"timestamp": "2026-11-01T10:00:00-12:00"}, None, ""),
    "offset +18:01": ({"timestamp": "2026-11-01T10:00:00+18:01"}, "invalid_timestamp", "±18:00"),
    "offset -18:30": ({"timestamp": "2026-11-01T10:00:00-18:30"}, "invalid_timestamp", "±18:00"),
    "offset +99:00": ({"timestamp": "2026-11-01T10:00:00+99:00"}, "invalid_timestamp", "±18:00"),
    "offset +2400": ({"timestamp": "2026-11-01T10:00:00+2400"}, "invalid_timestamp", "±18:00"),
    "offset +19": ({"timestamp": "2026-11-01T10:00:00.5+19"}, "invalid_timestamp", "±18:00"),
    "receivedAt not a time": (
        {"receivedAt": "yesterday"},
        "invalid_timestamp",
        "receivedAt 'yesterday' is not an ISO 8601",
    ),
    "receivedAt offset": (
        {"receivedAt": "2026-11-01T10:00:00-99:00"},
        "invalid_timestamp",
        "receivedAt '2026-11-01T10:00:00-99:00' has a UTC offset beyond",
    ),
    "receivedAt before 2000": (
        {"receivedAt": "1999-12-31T23:59:59Z"},
        "timestamp_out_of_range",
        "receivedAt '1999-12-31T23:59:59Z' is before 2000",
    ),
    "receivedAt far ahead": (
        {"receivedAt": "2099-01-01T00:00:00Z"},
        "timestamp_out_of_range",
        "receivedAt '2099",
    ),
    "receivedAt empty": ({"receivedAt": ""}, None, ""),
    "receivedAt with offset": ({"receivedAt": "2026-11-01T12:00:01+02:00"}, None, ""),
    "NaN": ({"properties": {"rate": "@NaN@"}}, "non_finite_number", "field properties contains"),
    "Infinity": ({"properties": {"rate": "@Infinity@"}}, "non_finite_number", "NaN or Infinity"),
    "-Infinity": ({"properties": {"rate": "@-Infinity@"}}, "non_finite_number", "properties"),
    "nan": ({"properties": {"a": {"b": "@nan@"}}}, "non_finite_number", "properties"),
    "INF in a list": ({"properties": {"l": [1, "@INF@"]}}, "non_finite_number", "properties"),
    "NaN in traits": ({"traits": {"score": "@NaN@"}}, "non_finite_number", "field traits"),
    "NaN in context": ({"context": {"d": "@-inf@"}}, "non_finite_number", "field context"),
    "the text NaN": ({"properties": {"rate": "NaN", "info": "Infinity mode"}}, None, ""),
    "keys nan and inf": ({"properties": {"nan": 1, "inf": [2], "x": "a:NaN"}}, None, ""),
    "a large finite number": ({"properties": {"big": 1e300}}, None, ""),
    "userId blank-padded": ({"userId": "  u-77\t"}, None, "u-77"),
    "userId with unicode blanks": ({"userId": "\u3000u-78\u00a0"}, None, "u-78"),
    "userId with an inner blank": ({"userId": "Ada Lovelace"}, None, "Ada Lovelace"),
    "userId blanks only": ({"userId": " \t "}, "missing_identity", "neither userId"),
    "userId blanks, anonymousId empty": (
        {"userId": "\u00a0", "anonymousId": ""},
        "missing_identity",
        "neither userId",
    ),
    "userId blanks, anonymousId set": ({"userId": "   ", "anonymousId": "anon-5"}, None, ""),
    "userId with a bell": (
        {"userId": "u\x07x"},
        "invalid_identity",
        "userId contains control character U+0007",
    ),
    "userId with an escape": ({"userId": "\x1b[31mu"}, "invalid_identity", "U+001B at character 1"),
    "userId with DEL": ({"userId": "u\x7f"}, "invalid_identity", "U+007F"),
    "userId with C1": ({"userId": "u\x85x"}, "invalid_identity", "U+0085"),
    "userId with a line separator": ({"userId": "u\u2028x"}, "invalid_identity", "U+2028"),
    "anonymousId with a newline inside": (
        {"userId": ..., "anonymousId": "a\nb"},
        "invalid_identity",
        "anonymousId contains control character U+000A",
    ),
    "NUL in a property": (
        {"properties": {"plan": "pro\x00"}},
        "nul_character",
        "U+0000 (NUL) in properties, traits or context",
    ),
    "NUL in the event name": ({"event": "Sign\x00ed Up"}, "nul_character", "event or name"),
    "a backslash before u0000 is text": ({"properties": {"path": "C:\\u0000"}}, None, ""),
}
# What CSV cannot carry in a row (a raw line break) or in a file at all (NUL).
NOT_IN_CSV = {"anonymousId with a newline inside", "NUL in the event name"}


def _value_record(index: int, changes: dict) -> dict:
    return good(index, **{"messageId": f"case-{index}", **changes})


def _json_text(record: dict) -> str:
    text = json.dumps(record)
    for token in ("NaN", "Infinity", "-Infinity", "nan", "INF", "-inf"):
        text = text.replace(f'"@{token}@"', token)
    return text


def _write_value_cases(landing: Path, fmt: str) -> list[str]:
    names = [n for n in sorted(VALUE_CASES) if fmt == "jsonl" or n not in NOT_IN_CSV]
    records = [_value_record(k, VALUE_CASES[name][0]) for k, name in enumerate(names)]
    if fmt == "jsonl":
        (landing / "values.jsonl").write_text("".join(_json_text(r) + "\n" for r in records))
        return names
    rows = []
    for record in records:
        row = dict(record)
        for key in ("properties", "traits", "context"):
            if isinstance(row.get(key), dict):
                row[key] = _json_text(row[key])
        rows.append(row)
    if fmt == "csv":
        write_csv(landing / "values.csv", rows)
    else:
        pq.write_table(parquet_table(rows), landing / "values.parquet")
    return names


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_values_are_judged_alike_in_every_format(fmt: str, landing: Path, warehouse) -> None:
    names = _write_value_cases(landing, fmt)

    summary = ingest(warehouse, landing)

    first_line = 2 if fmt == "csv" else 1
    found = {
        number - first_line: (code, message)
        for _, number, code, message, _ in rejections(warehouse)
    }
    for k, name in enumerate(names):
        _, code, phrase = VALUE_CASES[name]
        if code is None:
            assert k not in found, (name, found.get(k))
        else:
            assert found.get(k, (None, ""))[0] == code, (name, found.get(k))
            assert phrase in found[k][1], (name, found[k][1])
    loaded = {
        row[0]: row[1:]
        for row in warehouse.execute(
            "select event_id, user_id, anonymous_id from raw.events"
        ).fetchall()
    }
    assert set(loaded) == {f"case-{k}" for k, n in enumerate(names) if VALUE_CASES[n][1] is None}
    for k, name in enumerate(names):
        if name.startswith("userId") and VALUE_CASES[name][1] is None:
            user_id, _ = loaded[f"case-{k}"]
            expected = VALUE_CASES[name][2] or None
            assert user_id == expected, name
    assert_counts_add_up(warehouse, summary)


def test_parquet_float_columns_with_nan_or_infinity(landing: Path, warehouse) -> None:
    # A typed struct column, as a DataFrame writer makes it: floats, not JSON text.
    rates = [0.25, float("nan"), float("inf"), float("-inf")]
    table = pa.table(
        {
            "messageId": [f"m-{k}" for k in range(4)],
            "type": ["track"] * 4,
            "event": ["Report Viewed"] * 4,
            "userId": ["u-1"] * 4,
            "timestamp": ["2026-11-01T10:00:00Z"] * 4,
            "properties": pa.array([{"rate": r} for r in rates]),
        }
    )
    pq.write_table(table, landing / "typed.parquet")

    summary = ingest(warehouse, landing)

    assert event_ids(warehouse) == {"m-0"}
    assert [(n, c) for _, n, c, _, _ in rejections(warehouse)] == [
        (k, "non_finite_number") for k in (2, 3, 4)
    ]
    assert_counts_add_up(warehouse, summary)


def test_trimmed_identity_dedupes_across_formats(landing: Path, warehouse) -> None:
    # Without messageId the event id hashes the identity: padded and clean are one event.
    clean = good(1, messageId=...)
    (landing / "a.jsonl").write_bytes(line(clean))
    write_csv(landing / "b.csv", [{**clean, "userId": f" {clean['userId']} "}])

    summary = ingest(warehouse, landing)

    assert warehouse.execute("select user_id from raw.events").fetchall() == [("u-1",)]
    assert summary.total("rows_duplicate") == 1
    assert_counts_add_up(warehouse, summary)
