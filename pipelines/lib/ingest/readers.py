"""Stream a landing file as Arrow chunks for set-based validation in DuckDB.

JSON Lines arrive as (line_number, raw bytes) built with numpy, zero-copy: no Python loop
per record. CSV and Parquet arrive as their columns. A file-level fault raises
BrokenFileError after every readable chunk has been yielded, so nothing readable is lost.

Every reader works in bounded memory whatever the file holds: lines are split on b"\\n"
only and a line over MAX_LINE_BYTES is never held whole (its first 64 KiB are kept for
the rejection), a gzip stream stops at MAX_DECOMPRESSED_BYTES, a chunk holds at most
CHUNK_BYTES or CHUNK_LINES, and Parquet row groups are read in batches sized by their
decoded bytes (dictionary-encoded strings are measured before they are expanded).

This module is the entry point (read_chunks), the home of those limits, and re-exports
what callers use. The work is in:
  chunks.py          Chunk, Reject, BrokenFileError, ReadLimits (shared by every reader)
  byte_streams.py    plain and gzip byte pieces (bounded, salvaging inflate), sniffing
  long_lines.py      finding lines over MAX_LINE_BYTES (JSON Lines and CSV)
  columns.py         the Segment columns of a CSV header or Parquet schema
  jsonl_reader.py    JSON Lines (plain or gzip)
  csv_reader.py      CSV, through a guard against over-long lines
  parquet_reader.py  Parquet, sliced by measured decoded bytes
"""

from __future__ import annotations

import csv
import zlib
from collections.abc import Iterator
from typing import BinaryIO

import pyarrow as pa

# Fixed by the formats rather than limits to tune; re-exported for callers that read them.
from pipelines.lib.ingest.byte_streams import PIECE_BYTES, SNIFF_BYTES
from pipelines.lib.ingest.chunks import (
    KEPT_PREFIX_BYTES,
    BrokenFileError,
    Chunk,
    ReadLimits,
    Reject,
)
from pipelines.lib.ingest.columns import IDENTITY_COLUMNS, REQUIRED_COLUMNS
from pipelines.lib.ingest.csv_reader import read_csv
from pipelines.lib.ingest.jsonl_reader import read_jsonl
from pipelines.lib.ingest.parquet_reader import read_parquet

__all__ = [
    "CHUNK_BYTES",
    "CHUNK_LINES",
    "CSV_BLOCK_BYTES",
    "IDENTITY_COLUMNS",
    "KEPT_PREFIX_BYTES",
    "MAX_DECOMPRESSED_BYTES",
    "MAX_LINE_BYTES",
    "PARQUET_BATCH_ROWS",
    "PIECE_BYTES",
    "REQUIRED_COLUMNS",
    "SNIFF_BYTES",
    "BrokenFileError",
    "Chunk",
    "ReadLimits",
    "Reject",
    "current_limits",
    "read_chunks",
    "read_csv",
    "read_jsonl",
    "read_parquet",
]

# The limits. read_chunks reads them at each call (current_limits), so raising one here,
# or a test lowering one with monkeypatch, takes effect on the next file read.
CHUNK_BYTES = 128 * 1024 * 1024
# A file of empty lines would otherwise make 128M-row chunks (16 bytes of index per line).
CHUNK_LINES = 1_000_000
PARQUET_BATCH_ROWS = 500_000
# Lines up to this size are read whole and judged (record_too_large above 32 KiB); longer
# ones are rejected as line_too_long while being read, keeping only their first 64 KiB.
MAX_LINE_BYTES = 1024 * 1024
# A compressed file may expand to at most this much (a gzip bomb expands ~1000x). About
# 8M events of 500 bytes: split larger exports into several files.
MAX_DECOMPRESSED_BYTES = 4 * 1024**3
# CSV reads through a guard that hands pyarrow blocks of this size.
CSV_BLOCK_BYTES = 64 * 1024 * 1024

# What a reader may raise for a file it cannot read to its end (anything else is a bug).
# An OSError counts only without an errno: pyarrow's, about the content; one with an errno
# is a failed system call, the machine's fault, and is raised as it is.
_READ_FAULTS = (EOFError, ValueError, zlib.error, csv.Error, pa.ArrowException)


def current_limits() -> ReadLimits:
    """The limits as this module holds them now."""
    return ReadLimits(
        chunk_bytes=CHUNK_BYTES,
        chunk_lines=CHUNK_LINES,
        max_line_bytes=MAX_LINE_BYTES,
        max_decompressed_bytes=MAX_DECOMPRESSED_BYTES,
        csv_block_bytes=CSV_BLOCK_BYTES,
        parquet_batch_rows=PARQUET_BATCH_ROWS,
    )


def read_chunks(handle: BinaryIO, file_format: str, name: str = "file") -> Iterator[Chunk]:
    """The reader for a format name from files.detect_format, over an open file.

    Whatever a reader raises for the file's content becomes a file-level fault after the
    chunks read so far, so the file is recorded (and not retried until it changes).
    """
    limits = current_limits()
    if file_format == "jsonl":
        reader = read_jsonl(handle, compressed=False, limits=limits, name=name)
    elif file_format == "jsonl.gz":
        reader = read_jsonl(handle, compressed=True, limits=limits, name=name)
    elif file_format == "csv":
        reader = read_csv(handle, limits, name)
    elif file_format == "parquet":
        reader = read_parquet(handle, limits, name)
    else:
        raise ValueError(f"{name}: unsupported format {file_format!r}")
    try:
        yield from reader
    except BrokenFileError:
        raise
    except MemoryError:
        raise
    except OSError as exc:
        if exc.errno is not None:
            raise  # a system call failed (a failing disk): the machine's fault, not the file's
        raise _unreadable(name, exc) from exc
    except _READ_FAULTS as exc:
        raise _unreadable(name, exc) from exc


def _unreadable(name: str, exc: Exception) -> BrokenFileError:
    return BrokenFileError(
        "unreadable_file",
        f"{name} could not be read to its end ({type(exc).__name__}: {exc}); the records"
        " before the fault were read",
    )
