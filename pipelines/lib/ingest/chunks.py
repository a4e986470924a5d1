"""What every landing-file reader yields or raises, and the limits it reads under.

The format readers (jsonl_reader, csv_reader, parquet_reader) import these from here;
`readers` re-exports them, so callers keep importing from `readers`. The limits' values
live in `readers` (the knobs an operator raises); `readers.read_chunks` hands them to a
reader as a ReadLimits when it opens a file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from pipelines.lib.ingest.validate import MAX_KEPT_RAW_CHARS

# How much of a rejected record or over-long line is kept in raw_record.
KEPT_PREFIX_BYTES = MAX_KEPT_RAW_CHARS


class BrokenFileError(Exception):
    """The file (or its remainder) cannot be read; recorded as one file-level rejection."""

    def __init__(self, code: str, message: str, raw_record: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.raw_record = raw_record


@dataclass(frozen=True)
class Reject:
    """A record the reader itself rejected (it never reaches the validation SQL)."""

    line_number: int | None
    raw_record: str | None
    code: str
    message: str


@dataclass
class Chunk:
    """One batch of records; `kind` says which SQL builds the candidate rows."""

    kind: str  # "lines" | "columns"
    table: pa.Table
    # Records rejected while reading (over-long lines, CSV rows with the wrong width).
    rejects: list[Reject] = field(default_factory=list)


@dataclass(frozen=True)
class ReadLimits:
    """The memory bounds of one file's read (see the constants of the same names in
    `readers`, which `readers.read_chunks` reads at each call)."""

    chunk_bytes: int
    chunk_lines: int
    max_line_bytes: int
    max_decompressed_bytes: int
    csv_block_bytes: int
    parquet_batch_rows: int


def escaped(data: bytes) -> str:
    """Bytes as text for raw_record, bytes that are not UTF-8 kept as backslash escapes."""
    return data.decode("utf-8", errors="backslashreplace")


def mib(size: int) -> str:
    """A size for a message: in MiB from 1 MiB up, else in bytes."""
    return f"{size / 1024**2:g} MiB" if size >= 1024**2 else f"{size} bytes"
