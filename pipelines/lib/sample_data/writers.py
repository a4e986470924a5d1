"""Streaming writers for the four landing formats.

Valid records arrive pre-rendered by `renderer_for(fmt)` (a JSONL or CSV line, or a row
of strings for parquet), so rendering can run in the simulation worker processes. Each
writer takes batches (one user's records at a time) and keeps at most one parquet row
group in memory. Output bytes depend only on the records: gzip gets a fixed mtime and no
file name, parquet no wall-clock metadata, so re-running gives byte-identical files.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.lib.sample_data.bad_records import INVALID_UTF8, NOT_UTF8_MARKER, BadRecord
from pipelines.lib.sample_data.records import COLUMNS, Record, jsonl_line, tabular_row

FORMATS: tuple[str, ...] = ("jsonl", "jsonl.gz", "parquet", "csv")
PARQUET_ROW_GROUP = 100_000
_SCHEMA = pa.schema([pa.field(name, pa.string()) for name in COLUMNS])

# A rendered valid record (JSONL or CSV line, parquet row) or a malformed record.
Item = str | Record | BadRecord


class BatchWriter(Protocol):
    def write(self, items: Sequence[Item]) -> None: ...

    def close(self) -> None: ...


class JsonlWriter:
    """Newline-delimited JSON, optionally gzip-compressed."""

    def __init__(self, path: Path, *, gz: bool) -> None:
        self._raw = open(path, "wb", buffering=1 << 20)  # noqa: SIM115 - closed in close()
        self._out: BinaryIO = self._raw
        if gz:
            # Level 6 is zlib's speed/size sweet spot; mtime=0 and no name for determinism.
            self._out = gzip.GzipFile(
                filename="", mode="wb", fileobj=self._raw, compresslevel=6, mtime=0
            )

    def write(self, items: Sequence[Item]) -> None:
        chunk: list[str] = []
        for item in items:
            if type(item) is str:
                chunk.append(item)
            else:
                # A malformed line is prebuilt bytes (it may not even be valid UTF-8).
                if chunk:
                    self._out.write("".join(chunk).encode("utf-8"))
                    chunk = []
                self._out.write(item.line)  # type: ignore[union-attr, arg-type]
        if chunk:
            self._out.write("".join(chunk).encode("utf-8"))

    def close(self) -> None:
        if self._out is not self._raw:
            self._out.close()
        self._raw.close()


class CsvWriter:
    """RFC 4180-style CSV with a header row; nulls are empty fields, JSON columns as text."""

    def __init__(self, path: Path) -> None:
        self._raw = open(path, "wb", buffering=1 << 20)  # noqa: SIM115 - closed in close()
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, lineterminator="\n")
        self._csv.writerow(COLUMNS)
        self._flush()

    def _flush(self) -> None:
        data = self._buffer.getvalue().encode("utf-8")
        if NOT_UTF8_MARKER in self._buffer.getvalue():
            data = data.replace(NOT_UTF8_MARKER.encode(), INVALID_UTF8)
        self._raw.write(data)
        self._buffer.seek(0)
        self._buffer.truncate()

    def write(self, items: Sequence[Item]) -> None:
        buffer_write = self._buffer.write
        writerow = self._csv.writerow
        for item in items:
            if type(item) is str:
                buffer_write(item)  # a valid record, already a CSV line (see csv_line)
            else:
                writerow(item.row)  # type: ignore[union-attr]
        self._flush()

    def close(self) -> None:
        self._raw.close()


class ParquetWriter:
    """All-string columns, written in row groups of about `PARQUET_ROW_GROUP` rows."""

    def __init__(self, path: Path) -> None:
        self._writer = pq.ParquetWriter(path, _SCHEMA, compression="zstd")
        self._rows: list[Sequence[str | None]] = []

    def write(self, items: Sequence[Item]) -> None:
        rows = self._rows
        for item in items:
            rows.append(item.row if type(item) is BadRecord else item)  # type: ignore[arg-type]
        if len(rows) >= PARQUET_ROW_GROUP:
            self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        columns = list(zip(*self._rows, strict=True))
        table = pa.Table.from_arrays(
            [pa.array(col, type=pa.string()) for col in columns], schema=_SCHEMA
        )
        self._writer.write_table(table, row_group_size=len(self._rows))
        self._rows = []

    def close(self) -> None:
        self._flush()
        self._writer.close()


_CSV_LINE_BUFFER = io.StringIO()
_CSV_LINE_WRITER = csv.writer(_CSV_LINE_BUFFER, lineterminator="\n")


def csv_line(record: Record) -> str:
    """One record as a CSV line, quoted exactly as CsvWriter quotes its rows."""
    _CSV_LINE_BUFFER.seek(0)
    _CSV_LINE_BUFFER.truncate()
    _CSV_LINE_WRITER.writerow(tabular_row(record))
    return _CSV_LINE_BUFFER.getvalue()


def renderer_for(fmt: str) -> Callable[[Record], str | Record]:
    """How a valid record is rendered for this format's writer.

    As much as possible happens here, because in a large sample this runs in the worker
    processes while the single writer process is the bottleneck.
    """
    if fmt in ("jsonl", "jsonl.gz"):
        return jsonl_line
    if fmt == "csv":
        return csv_line
    return tabular_row


def open_writer(fmt: str, path: Path) -> BatchWriter:
    if fmt == "jsonl":
        return JsonlWriter(path, gz=False)
    if fmt == "jsonl.gz":
        return JsonlWriter(path, gz=True)
    if fmt == "csv":
        return CsvWriter(path)
    if fmt == "parquet":
        return ParquetWriter(path)
    raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
