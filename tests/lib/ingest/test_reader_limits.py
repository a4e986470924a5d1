"""The limits in readers.py take effect on the next read, whichever module reads the file.

The format readers live in their own modules; operators raise (and tests lower) the
limits as constants of `readers`. A limit that a reader copied at import, or that moved
out of `readers`, would make a `monkeypatch.setattr(readers, ...)` silently do nothing.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.lib.ingest import readers
from pipelines.lib.ingest.readers import BrokenFileError, Chunk

KiB = 1024
LINE_BYTES = 100  # every generated record line is this long, line break excluded


def _jsonl_line(number: int, padding: int = 0) -> bytes:
    head = b'{"type":"track","timestamp":"2026-11-01T10:00:00Z","userId":"u%06d","p":"' % number
    body = head + b"x" * (LINE_BYTES - len(head) - 2 + padding) + b'"}'
    return body + b"\n"


def _jsonl(lines: int, long_line: int | None = None) -> bytes:
    return b"".join(_jsonl_line(i, 2 * KiB if i == long_line else 0) for i in range(1, lines + 1))


def _csv(rows: int, long_row: int | None = None) -> bytes:
    lines = [b"type,timestamp,userId,event\n"]
    for i in range(1, rows + 1):
        event = b"e" * (2 * KiB if i == long_row else 60)
        lines.append(b"track,2026-11-01T10:00:00Z,u%06d,%s\n" % (i, event))
    return b"".join(lines)


def _parquet(rows: int, long_row: int | None = None) -> bytes:
    table = pa.table(
        {
            "type": ["track"] * rows,
            "timestamp": ["2026-11-01T10:00:00Z"] * rows,
            "userId": [f"u{i:06d}" for i in range(rows)],
            # Distinct values, so the dictionary-encoded size grows with the rows.
            "event": [f"{i:06d}" + "e" * (2 * KiB if i == long_row else 60) for i in range(rows)],
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=max(rows // 4, 1))
    return sink.getvalue()


@dataclass(frozen=True)
class Read:
    """What a read did, in the terms the limits bound."""

    chunks: int
    most_rows: int  # in one chunk
    reject_codes: tuple[str, ...]
    fault: str | None


def _read(data: bytes, file_format: str) -> Read:
    chunks: list[Chunk] = []
    fault = None
    try:
        chunks.extend(readers.read_chunks(io.BytesIO(data), file_format, "limits-test"))
    except BrokenFileError as exc:
        fault = exc.code
    with_rows = [chunk for chunk in chunks if chunk.table.num_rows]
    return Read(
        chunks=len(with_rows),
        most_rows=max((chunk.table.num_rows for chunk in with_rows), default=0),
        reject_codes=tuple(reject.code for chunk in chunks for reject in chunk.rejects),
        fault=fault,
    )


Case = tuple[str, int, str, Callable[[], bytes], Callable[[Read], bool]]
CASES: list[Case] = [
    # (constant, lowered value, format, file, what the lowered limit must make of it)
    ("CHUNK_BYTES", 64 * KiB, "jsonl", lambda: _jsonl(3000), lambda r: r.chunks >= 4),
    ("CHUNK_BYTES", 20 * KiB, "parquet", lambda: _parquet(2000), lambda r: r.chunks >= 5),
    ("CHUNK_LINES", 10, "jsonl", lambda: _jsonl(3000), lambda r: r.chunks >= 4),
    (
        "MAX_LINE_BYTES",
        KiB,
        "jsonl",
        lambda: _jsonl(50, long_line=7),
        lambda r: r.reject_codes == ("line_too_long",),
    ),
    (
        "MAX_LINE_BYTES",
        KiB,
        "jsonl.gz",
        lambda: gzip.compress(_jsonl(50, long_line=7)),
        lambda r: r.reject_codes == ("line_too_long",),
    ),
    (
        "MAX_LINE_BYTES",
        KiB,
        "csv",
        lambda: _csv(50, long_row=7),
        lambda r: r.reject_codes == ("line_too_long",),
    ),
    (
        "MAX_LINE_BYTES",
        KiB,
        "parquet",
        lambda: _parquet(50, long_row=7),
        lambda r: r.reject_codes == ("record_too_large",),
    ),
    (
        "MAX_DECOMPRESSED_BYTES",
        100 * KiB,
        "jsonl.gz",
        lambda: gzip.compress(_jsonl(3000)),
        lambda r: r.fault == "file_too_large",
    ),
    (
        "MAX_DECOMPRESSED_BYTES",
        100 * KiB,
        "parquet",
        lambda: _parquet(4000),
        lambda r: r.fault == "file_too_large",
    ),
    ("CSV_BLOCK_BYTES", 64 * KiB, "csv", lambda: _csv(5000), lambda r: r.chunks >= 4),
    (
        "PARQUET_BATCH_ROWS",
        100,
        "parquet",
        lambda: _parquet(1000),
        lambda r: r.chunks >= 10 and r.most_rows <= 100,
    ),
]


@pytest.mark.parametrize(
    ("constant", "value", "file_format", "make", "lowered"),
    CASES,
    ids=[f"{case[0]}-{case[2]}" for case in CASES],
)
def test_lowering_a_limit_in_readers_changes_the_next_read(
    monkeypatch: pytest.MonkeyPatch,
    constant: str,
    value: int,
    file_format: str,
    make: Callable[[], bytes],
    lowered: Callable[[Read], bool],
) -> None:
    data = make()
    before = _read(data, file_format)
    assert not lowered(before), f"the file already shows the effect at the default: {before}"
    assert before.fault is None and before.reject_codes == ()

    monkeypatch.setattr(readers, constant, value)  # raising: the constant must be there
    after = _read(data, file_format)

    assert lowered(after), f"{constant}={value} had no effect on {file_format}: {after}"
