"""JSON Lines (plain or gzip) as chunks of (line_number, raw bytes) rows.

Lines are split on b"\\n" only, with numpy and zero-copy: no Python loop per record (the
validation SQL parses the JSON). Memory stays bounded whatever the file holds: a chunk
holds at most chunk_bytes or chunk_lines, and a line over max_line_bytes is never held
whole (its first KEPT_PREFIX_BYTES are kept for its line_too_long rejection).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
import pyarrow as pa

from pipelines.lib.ingest.byte_streams import TooLarge, gunzip_pieces, plain_pieces, sniffed
from pipelines.lib.ingest.chunks import (
    KEPT_PREFIX_BYTES,
    BrokenFileError,
    Chunk,
    ReadLimits,
    Reject,
    escaped,
    mib,
)
from pipelines.lib.ingest.long_lines import (
    LongLine,
    has_long_line,
    line_too_long,
    split_long_lines,
)

_MAX_HELD_REJECTS = 256
_EMPTY_LINES = pa.table(
    {"line_number": pa.array([], pa.int64()), "raw": pa.array([], pa.large_binary())}
)


def _lines_table(data: bytes, first_line: int) -> tuple[pa.Table | None, int]:
    """Split bytes on b"\\n" into a binary column without copying the payload, and say how
    many lines there were. Lines that are only a line break are dropped here (cheaply: a
    file of empty lines never reaches SQL), as the SQL would drop them."""
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10) + 1
    if len(ends) == 0 or ends[-1] != len(data):
        ends = np.append(ends, len(data))
    offsets = np.concatenate(([0], ends)).astype(np.int64)
    count = len(offsets) - 1
    blank = (np.diff(offsets) == 1) & (buf[offsets[:-1]] == 10)
    if blank.all():
        return None, count
    numbers = np.arange(first_line, first_line + count, dtype=np.int64)
    lines = pa.Array.from_buffers(
        pa.large_binary(), count, [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data)]
    )
    table = pa.table({"line_number": pa.array(numbers), "raw": lines})
    return (table.filter(pa.array(~blank)) if blank.any() else table), count


class _JsonLinesChunker:
    """Turns a stream of byte pieces into chunks of whole lines, in bounded memory."""

    def __init__(self, limits: ReadLimits) -> None:
        self.limits = limits
        self.next_line = 1  # number of the first line not yet emitted
        self.pieces: list[bytes] = []
        self.buffered = 0
        self.breaks = 0
        self.open_line = 0  # bytes after the last line break held (the unfinished line)
        self.long_line: LongLine | None = None
        self.rejects: list[Reject] = []

    def feed(self, piece: bytes) -> Iterator[Chunk]:
        if self.long_line is not None:
            cut = piece.find(b"\n")
            if cut < 0:
                self.long_line.length += len(piece)
                return
            self.long_line.length += cut
            self._end_long_line()
            if len(self.rejects) >= _MAX_HELD_REJECTS:  # each holds up to 64 KiB
                yield Chunk("lines", _EMPTY_LINES, self._take_rejects())
            piece = piece[cut + 1 :]
            if not piece:
                return
        self.pieces.append(piece)
        self.buffered += len(piece)
        breaks = piece.count(b"\n")
        self.breaks += breaks
        if breaks:
            self.open_line = len(piece) - piece.rfind(b"\n") - 1
        else:
            self.open_line += len(piece)
        if self.open_line > self.limits.max_line_bytes:
            # Emit the whole lines; keep only the head of the over-long one and skip the rest.
            data = self._take()
            cut = len(data) - self.open_line
            yield from self._chunks(data[:cut])
            self.long_line = LongLine(self.next_line, data[cut : cut + KEPT_PREFIX_BYTES], 0)
            self.long_line.length = len(data) - cut
            self.open_line = 0
        elif self.buffered >= self.limits.chunk_bytes or self.breaks >= self.limits.chunk_lines:
            data = self._take()
            cut = len(data) - self.open_line
            self.pieces = [data[cut:]] if cut < len(data) else []
            self.buffered = len(data) - cut
            yield from self._chunks(data[:cut])

    def finish(self, complete: bool) -> tuple[Iterator[Chunk], bytes]:
        """The remaining chunks, and the unfinished last line when the stream broke off
        (`complete` false): it is not a record, it goes into the file fault."""
        if self.long_line is not None:
            self._end_long_line()
        data = self._take()
        tail = b""
        if not complete and self.open_line:
            data, tail = data[: len(data) - self.open_line], data[len(data) - self.open_line :]
        return self._final_chunks(data), tail

    def _final_chunks(self, data: bytes) -> Iterator[Chunk]:
        yield from self._chunks(data)
        if self.rejects:
            yield Chunk("lines", _EMPTY_LINES, self._take_rejects())

    def _take(self) -> bytes:
        data = b"".join(self.pieces)
        self.pieces, self.buffered, self.breaks = [], 0, 0
        return data

    def _take_rejects(self) -> list[Reject]:
        rejects, self.rejects = self.rejects, []
        return rejects

    def _end_long_line(self) -> None:
        assert self.long_line is not None
        line = self.long_line
        self.rejects.append(
            line_too_long(line.line, line.prefix, line.length, self.limits.max_line_bytes)
        )
        self.next_line += 1
        self.long_line = None

    def _chunks(self, data: bytes) -> Iterator[Chunk]:
        """Chunks for whole lines in `data` (the last may lack its line break at EOF)."""
        if not data:
            return
        limit = self.limits.max_line_bytes
        if not has_long_line(data, limit):
            yield from self._table_chunk(data)
            return
        for start, end, is_long in split_long_lines(data, limit):
            if is_long:
                prefix = data[start : start + KEPT_PREFIX_BYTES]
                self.rejects.append(line_too_long(self.next_line, prefix, end - start, limit))
                self.next_line += 1
            else:
                yield from self._table_chunk(data[start:end])

    def _table_chunk(self, data: bytes) -> Iterator[Chunk]:
        table, count = _lines_table(data, self.next_line)
        self.next_line += count
        if table is not None or self.rejects:
            yield Chunk("lines", table if table is not None else _EMPTY_LINES, self._take_rejects())


def read_jsonl(
    handle: BinaryIO, compressed: bool, limits: ReadLimits, name: str = "file"
) -> Iterator[Chunk]:
    """JSON Lines (optionally gzip): chunks of whole lines, numbered from 1.

    A byte-order mark is left in place: the validation SQL ignores it at a line's start.
    """
    chunker = _JsonLinesChunker(limits)
    fault: Exception | None = None
    pieces = (
        gunzip_pieces(handle, limits.max_decompressed_bytes) if compressed else plain_pieces(handle)
    )
    try:
        for piece in sniffed(pieces, "JSON Lines"):
            yield from chunker.feed(piece)
    except (EOFError, zlib.error, TooLarge) as exc:
        fault = exc
    chunks, tail = chunker.finish(complete=fault is None)
    yield from chunks
    if fault is None:
        return
    read = chunker.next_line - 1
    if isinstance(fault, TooLarge):
        raise BrokenFileError(
            "file_too_large",
            f"{name} decompresses to more than {mib(fault.limit)}, the limit for a compressed"
            f" landing file: lines 1-{read} were read, the rest was not (split the export"
            " into smaller files)",
            escaped(tail[:KEPT_PREFIX_BYTES]) or None,
        )
    raise BrokenFileError(
        "unreadable_file",
        f"gzip stream is truncated or corrupt after line {read} ({fault}); the lines before"
        " it were read, the rest of the file was not",
        escaped(tail[:KEPT_PREFIX_BYTES]) or None,
    ) from fault
