"""CSV with a header row as chunks of Segment columns, every column read as bytes.

Reading as bytes lets the validation SQL catch bad UTF-8 per row instead of failing the
file. pyarrow reads through a guard (_CsvLineGuard) because pyarrow holds a whole line
in memory, whatever its size: the guard replaces each line over max_line_bytes by a
marker line before pyarrow sees it, and rows of the wrong width are kept as rejections.
"""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from pipelines.lib.ingest.byte_streams import PIECE_BYTES, SNIFF_BYTES, UTF8_BOM, reject_binary
from pipelines.lib.ingest.chunks import (
    KEPT_PREFIX_BYTES,
    BrokenFileError,
    Chunk,
    ReadLimits,
    Reject,
    escaped,
)
from pipelines.lib.ingest.columns import check_columns
from pipelines.lib.ingest.long_lines import (
    LongLine,
    has_long_line,
    line_too_long,
    split_long_lines,
)


def _csv_header(head: bytes) -> list[str]:
    reject_binary(head, "CSV")
    head = head.removeprefix(UTF8_BOM)
    if b"\n" not in head and len(head) >= SNIFF_BYTES:
        raise BrokenFileError(
            "missing_columns",
            f"CSV header (line 1) is longer than {SNIFF_BYTES} bytes: its columns cannot be read",
            escaped(head[:KEPT_PREFIX_BYTES]),
        )
    first_line = head.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    return next(csv.reader(io.StringIO(first_line)), [])


class _CsvLineGuard(io.RawIOBase):
    """CSV bytes for pyarrow, with each line over `max_line_bytes` replaced by a one-field
    marker line (pyarrow then reports it as a wrong-width row, with its line number), so
    neither pyarrow nor this guard ever holds a whole over-long line."""

    def __init__(self, handle: BinaryIO, max_line_bytes: int) -> None:
        self._handle = handle
        self._limit = max_line_bytes
        self._ready = bytearray()
        self._open = b""  # the unfinished line, at most max_line_bytes
        self._long: LongLine | None = None
        self._eof = False
        self.marker = f"bis-line-too-long-{secrets.token_hex(8)}-"
        # (first bytes, length) by marker number, until the reader has reported the line.
        self.long_lines: dict[int, tuple[bytes, int]] = {}
        self._marks = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        # pyarrow asks for a whole block; answered with one copy (RawIOBase.read makes two).
        while (size < 0 or len(self._ready) < size) and not self._eof:
            self._fill()
        size = len(self._ready) if size < 0 else min(size, len(self._ready))
        data = bytes(self._ready[:size])
        del self._ready[:size]
        return data

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _mark(self, prefix: bytes, length: int) -> None:
        self._ready += f"{self.marker}{self._marks}\n".encode()
        self.long_lines[self._marks] = (prefix, length)
        self._marks += 1

    def _fill(self) -> None:
        block = self._handle.read(PIECE_BYTES * 16)
        if not block:
            self._eof = True
            if self._long is not None:
                self._mark(self._long.prefix, self._long.length)
            else:
                self._ready += self._open
            return
        if self._long is not None:
            cut = block.find(b"\n")
            if cut < 0:
                self._long.length += len(block)
                return
            self._long.length += cut
            self._mark(self._long.prefix, self._long.length)
            self._long = None
            block = block[cut + 1 :]
        data = self._open + block
        cut = data.rfind(b"\n") + 1
        if cut:
            whole = data[:cut]
            if has_long_line(whole, self._limit):
                for start, end, is_long in split_long_lines(whole, self._limit):
                    if is_long:
                        self._mark(whole[start : start + KEPT_PREFIX_BYTES], end - start)
                    else:
                        self._ready += whole[start:end]
            else:
                self._ready += whole
        tail = data[cut:]
        if len(tail) > self._limit:
            self._long = LongLine(0, tail[:KEPT_PREFIX_BYTES], len(tail))
            self._open = b""
        else:
            self._open = tail


def read_csv(handle: BinaryIO, limits: ReadLimits, name: str = "file") -> Iterator[Chunk]:
    """CSV with a header row; every column read as bytes so bad UTF-8 is caught per row."""
    head = handle.read(SNIFF_BYTES)
    handle.seek(0)
    columns = check_columns(_csv_header(head), "CSV header")
    guard = _CsvLineGuard(handle, limits.max_line_bytes)
    unparsed: list[tuple[int, str]] = []

    def keep_bad_row(row: pacsv.InvalidRow) -> str:
        number = row.number if row.number is not None else -1
        unparsed.append((number, row.text))
        return "skip"

    reader = pacsv.open_csv(
        guard,
        read_options=pacsv.ReadOptions(block_size=limits.csv_block_bytes, use_threads=False),
        parse_options=pacsv.ParseOptions(invalid_row_handler=keep_bad_row),
        convert_options=pacsv.ConvertOptions(
            column_types={raw: pa.binary() for raw in columns},
            include_columns=list(columns),
            strings_can_be_null=False,
        ),
    )

    def rejects(rows: list[tuple[int, str]]) -> list[Reject]:
        found = []
        for line, text in rows:
            number = line if line > 0 else None
            if text.startswith(guard.marker):
                prefix, length = guard.long_lines.pop(int(text[len(guard.marker) :]))
                found.append(line_too_long(line, prefix, length, limits.max_line_bytes))
            else:
                message = "CSV row has the wrong number of fields"
                found.append(Reject(number, text, "malformed_csv_row", message))
        return found

    rows_done = 0
    skipped_seen = 0
    for batch in reader:
        table = pa.Table.from_batches([batch]).rename_columns(list(columns.values()))
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
            rejects(new_bad),
        )
    if len(unparsed) > skipped_seen:
        empty = pa.table({"line_number": pa.array([], pa.int64())})
        yield Chunk("columns", empty, rejects(unparsed[skipped_seen:]))
