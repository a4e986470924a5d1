"""Stream a landing file as Arrow chunks for set-based validation in DuckDB.

JSON Lines arrive as (line_number, raw bytes) built with numpy, zero-copy: no Python loop
per record. CSV and Parquet arrive as their columns. A file-level fault raises
BrokenFileError after every readable chunk has been yielded, so nothing readable is lost.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipelines.lib.segment_spec import SEGMENT_COLUMNS

CHUNK_BYTES = 128 * 1024 * 1024
PIECE_BYTES = 64 * 1024
PARQUET_BATCH_ROWS = 500_000
SNIFF_BYTES = 64 * 1024

REQUIRED_COLUMNS = ("type", "timestamp")
IDENTITY_COLUMNS = ("userId", "anonymousId")


class BrokenFileError(Exception):
    """The file (or its remainder) cannot be read; recorded as one file-level rejection."""

    def __init__(self, code: str, message: str, raw_record: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.raw_record = raw_record


@dataclass
class Chunk:
    """One batch of records; `kind` says which SQL builds the candidate rows."""

    kind: str  # "lines" | "columns"
    table: pa.Table
    # Rows the reader itself could not split into fields (CSV rows with the wrong width).
    unparsed: list[tuple[int, str]] = field(default_factory=list)


def _lines_table(data: bytes, first_line: int) -> pa.Table:
    """Split bytes on newlines into a binary column without copying the payload."""
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10) + 1
    if len(ends) == 0 or ends[-1] != len(data):
        ends = np.append(ends, len(data))
    offsets = np.concatenate(([0], ends)).astype(np.int64)
    count = len(offsets) - 1
    lines = pa.Array.from_buffers(
        pa.large_binary(), count, [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data)]
    )
    numbers = pa.array(np.arange(first_line, first_line + count, dtype=np.int64))
    return pa.table({"line_number": numbers, "raw": lines})


def _reject_binary(head: bytes, what: str) -> None:
    if b"\x00" in head[:SNIFF_BYTES]:
        raise BrokenFileError("not_text", f"file contains NUL bytes: binary data, not {what}", None)


def read_jsonl(path: Path, compressed: bool) -> Iterator[Chunk]:
    """JSON Lines (optionally gzip): chunks of whole lines, numbered from 1.

    Read in small pieces so that a truncated gzip stream still yields every line
    decompressed before the cut.
    """
    opener = gzip.open if compressed else open
    next_line = 1
    pending = b""
    pieces: list[bytes] = []
    buffered = 0
    fault: Exception | None = None
    try:
        with opener(path, "rb") as handle:
            for piece in iter(lambda: handle.read(PIECE_BYTES), b""):
                if next_line == 1 and not pieces and not pending:
                    _reject_binary(piece, "JSON Lines")
                pieces.append(piece)
                buffered += len(piece)
                if buffered < CHUNK_BYTES:
                    continue
                data = pending + b"".join(pieces)
                pieces, buffered = [], 0
                cut = data.rfind(b"\n") + 1
                pending = data[cut:]  # a line longer than a chunk just keeps growing
                if cut:
                    table = _lines_table(data[:cut], next_line)
                    next_line += table.num_rows
                    yield Chunk("lines", table)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        fault = exc
    data = pending + b"".join(pieces)
    cut = data.rfind(b"\n") + 1 if fault else len(data)
    if cut:
        table = _lines_table(data[:cut], next_line)
        next_line += table.num_rows
        yield Chunk("lines", table)
    if fault is not None:
        tail = data[cut:].decode("utf-8", errors="backslashreplace")
        raise BrokenFileError(
            "unreadable_file",
            f"gzip stream is truncated or corrupt after line {next_line - 1} ({fault}); the"
            " lines before it were read, the rest of the file was not",
            tail or None,
        ) from fault


def _csv_header(path: Path) -> list[str]:
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    _reject_binary(head, "CSV")
    first_line = head.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    return next(csv.reader(io.StringIO(first_line)), [])


def _check_columns(present: list[str], what: str) -> list[str]:
    missing = [name for name in REQUIRED_COLUMNS if name not in present]
    if not any(name in present for name in IDENTITY_COLUMNS):
        missing.append("userId or anonymousId")
    if missing:
        raise BrokenFileError(
            "missing_columns",
            f"{what} lacks required column(s): {', '.join(missing)};"
            f" it has: {', '.join(present) or 'none'}",
        )
    return [name for name in SEGMENT_COLUMNS if name in present]


def read_csv(path: Path) -> Iterator[Chunk]:
    """CSV with a header row; every column read as bytes so bad UTF-8 is caught per row."""
    columns = _check_columns(_csv_header(path), "CSV header")
    unparsed: list[tuple[int, str]] = []

    def keep_bad_row(row: pacsv.InvalidRow) -> str:
        number = row.number if row.number is not None else -1
        unparsed.append((number, row.text))
        return "skip"

    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=64 * 1024 * 1024, use_threads=False),
        parse_options=pacsv.ParseOptions(invalid_row_handler=keep_bad_row),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.binary() for name in columns},
            include_columns=columns,
            strings_can_be_null=False,
        ),
    )
    rows_done = 0
    skipped_seen = 0
    for batch in reader:
        table = pa.Table.from_batches([batch])
        # Record number = physical line when no field spans lines (header is line 1).
        skipped_numbers = sorted(n for n, _ in unparsed if n > 0)
        candidates = np.arange(2, 2 + rows_done + table.num_rows + len(skipped_numbers))
        valid_numbers = np.setdiff1d(candidates, skipped_numbers, assume_unique=True)
        numbers = valid_numbers[rows_done : rows_done + table.num_rows]
        rows_done += table.num_rows
        new_bad = unparsed[skipped_seen:]
        skipped_seen = len(unparsed)
        yield Chunk(
            "columns",
            table.add_column(0, "line_number", pa.array(numbers.astype(np.int64))),
            list(new_bad),
        )
    if len(unparsed) > skipped_seen:
        empty = pa.table({"line_number": pa.array([], pa.int64())})
        yield Chunk("columns", empty, unparsed[skipped_seen:])


def read_parquet(path: Path) -> Iterator[Chunk]:
    """Parquet row groups in batches; a file that is not Parquet is a file-level fault."""
    try:
        # Without pre-buffering: it holds whole column chunks ahead (~1 GB on a 10M-row file).
        parquet = pq.ParquetFile(path, pre_buffer=False)
    except (pa.ArrowInvalid, OSError) as exc:
        raise BrokenFileError("unreadable_file", f"not a readable Parquet file: {exc}") from exc
    columns = _check_columns(parquet.schema_arrow.names, "Parquet schema")
    next_row = 1
    try:
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=columns):
            table = pa.Table.from_batches([batch])
            numbers = np.arange(next_row, next_row + table.num_rows, dtype=np.int64)
            next_row += table.num_rows
            yield Chunk("columns", table.add_column(0, "line_number", pa.array(numbers)))
    except (pa.ArrowInvalid, OSError) as exc:
        raise BrokenFileError(
            "unreadable_file",
            f"Parquet data is corrupt after row {next_row - 1} ({exc}); earlier rows were read",
        ) from exc


def read_chunks(path: Path, file_format: str) -> Iterator[Chunk]:
    """The reader for a format name from files.detect_format."""
    if file_format == "jsonl":
        return read_jsonl(path, compressed=False)
    if file_format == "jsonl.gz":
        return read_jsonl(path, compressed=True)
    if file_format == "csv":
        return read_csv(path)
    if file_format == "parquet":
        return read_parquet(path)
    raise ValueError(f"{path}: unsupported format {file_format!r}")
