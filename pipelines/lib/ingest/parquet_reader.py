"""Parquet row groups as chunks of Segment columns, sliced by their decoded size.

A Parquet file is small on disk for what it can decode to: a repeated value is stored
once. Text columns are therefore read dictionary-encoded and measured before they are
expanded, so a chunk never holds more than chunk_bytes of decoded text, a row over
max_line_bytes is rejected unexpanded, and row groups past max_decompressed_bytes (as
their metadata declares) are not read at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.lib.ingest.chunks import (
    KEPT_PREFIX_BYTES,
    BrokenFileError,
    Chunk,
    ReadLimits,
    Reject,
    escaped,
    mib,
)
from pipelines.lib.ingest.columns import check_columns
from pipelines.lib.ingest.validate import MAX_RECORD_BYTES

_NO_COLUMNS = pa.table({"line_number": pa.array([], pa.int64())})


def _is_text(arrow_type: pa.DataType) -> bool:
    return (
        pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
        or pa.types.is_binary(arrow_type)
        or pa.types.is_large_binary(arrow_type)
    )


def _row_bytes(batch: pa.RecordBatch) -> np.ndarray:
    """Decoded size of each row's text columns, without expanding dictionary columns."""
    sizes = np.zeros(batch.num_rows, dtype=np.int64)
    for column in batch.columns:
        if pa.types.is_dictionary(column.type):
            lengths = pc.binary_length(column.dictionary).fill_null(0)
            per_row = pc.take(lengths, column.indices).fill_null(0)
        elif _is_text(column.type):
            per_row = pc.binary_length(column).fill_null(0)
        else:
            continue
        sizes += per_row.to_numpy(zero_copy_only=False).astype(np.int64)
    return sizes


def _scannable(column: pa.Array) -> pa.Array:
    """The column as DuckDB can scan it: dictionaries expanded, and the numeric types it
    cannot read widened (a number is the wrong type for every Segment field anyway)."""
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if pa.types.is_float16(column.type):
        return column.cast(pa.float32())
    if pa.types.is_decimal256(column.type):
        return column.cast(pa.float64(), safe=False)
    return column


def _decoded(batch: pa.RecordBatch, names: dict[str, str]) -> pa.Table:
    """The batch with dictionary columns expanded and Segment column names."""
    columns = [_scannable(column) for column in batch.columns]
    return pa.table(columns, names=[names[name] for name in batch.schema.names])


def _cut_value(column: pa.Array, row: int) -> object:
    """One value, cut to what a rejection keeps, without expanding a huge one first."""
    if pa.types.is_dictionary(column.type):
        index = column.indices[row].as_py()
        if index is None:
            return None
        column, row = column.dictionary, index
    value = column.slice(row, 1)
    if pa.types.is_string(value.type) or pa.types.is_large_string(value.type):
        value = pc.utf8_slice_codeunits(value, 0, KEPT_PREFIX_BYTES)
    elif _is_text(value.type):
        value = pc.binary_slice(value, 0, KEPT_PREFIX_BYTES)
    result = value[0].as_py()
    return escaped(result) if isinstance(result, bytes) else result


def _parquet_raw(batch: pa.RecordBatch, row: int, names: dict[str, str]) -> str:
    """One row as a JSON object of its columns (each value cut to what is kept)."""
    values = {
        names[name]: _cut_value(column, row)
        for name, column in zip(batch.schema.names, batch.columns, strict=True)
    }
    # Compact, as the SQL keeps the other rejected rows.
    text = json.dumps(values, default=str, separators=(",", ":"), ensure_ascii=False)
    return text[:KEPT_PREFIX_BYTES]


def _readable_row_groups(metadata: pq.FileMetaData, columns: dict[str, str], limit: int) -> int:
    """How many leading row groups fit `limit` bytes, by their declared sizes
    (uncompressed, dictionary-encoded: what is decoded before any expansion)."""
    declared = 0
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for index in range(row_group.num_columns):
            chunk = row_group.column(index)
            if chunk.path_in_schema.split(".")[0] in columns:
                declared += chunk.total_uncompressed_size
        if declared > limit:
            return group
    return metadata.num_row_groups


def _parquet_slices(
    batch: pa.RecordBatch, numbers: np.ndarray, names: dict[str, str], limits: ReadLimits
) -> Iterator[tuple[pa.Table | None, int, list[Reject]]]:
    """(table, decoded bytes, rejects) for a batch: rows over max_line_bytes are rejected
    unexpanded, the others are expanded in slices of at most chunk_bytes."""
    sizes = _row_bytes(batch)
    too_long = sizes > limits.max_line_bytes
    if too_long.any():
        rejects = [
            Reject(
                int(numbers[row]),
                _parquet_raw(batch, int(row), names),
                "record_too_large",
                f"record is {int(sizes[row])} bytes, over the {MAX_RECORD_BYTES} byte limit",
            )
            for row in np.flatnonzero(too_long)
        ]
        yield None, 0, rejects
        keep = ~too_long
        batch = batch.filter(pa.array(keep))
        sizes, numbers = sizes[keep], numbers[keep]
    ends = np.cumsum(sizes)
    start = 0
    while start < batch.num_rows:
        base = int(ends[start - 1]) if start else 0
        stop = max(int(np.searchsorted(ends, base + limits.chunk_bytes, side="right")), start + 1)
        table = _decoded(batch.slice(start, stop - start), names)
        table = table.add_column(0, "line_number", pa.array(numbers[start:stop]))
        yield table, int(ends[stop - 1]) - base, []
        start = stop


def read_parquet(handle: BinaryIO, limits: ReadLimits, name: str = "file") -> Iterator[Chunk]:
    """Parquet row groups in batches; a file that is not Parquet is a file-level fault.

    Text columns are read dictionary-encoded, so a batch's decoded size is known before it
    is expanded: a small file whose repeated value decodes to gigabytes is read in slices
    of at most chunk_bytes, and a row over max_line_bytes is rejected unexpanded.
    """
    try:
        schema = pq.ParquetFile(handle).schema_arrow
        handle.seek(0)
        text_columns = [f.name for f in schema if _is_text(f.type)]
        # Without pre-buffering: it holds whole column chunks ahead (~1 GB on a 10M-row file).
        parquet = pq.ParquetFile(handle, pre_buffer=False, read_dictionary=text_columns)
    except (pa.ArrowInvalid, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise  # a failed system call, not the content (see readers.read_chunks)
        raise BrokenFileError("unreadable_file", f"not a readable Parquet file: {exc}") from exc
    columns = check_columns(parquet.schema_arrow.names, "Parquet schema")
    readable = _readable_row_groups(parquet.metadata, columns, limits.max_decompressed_bytes)
    batch_rows = limits.parquet_batch_rows
    next_row = 1
    pending: list[pa.Table] = []
    pending_rows = pending_bytes = 0
    batches = (
        parquet.iter_batches(
            batch_size=batch_rows, columns=list(columns), row_groups=list(range(readable))
        )
        if readable
        else iter(())
    )
    for batch in batches:
        numbers = np.arange(next_row, next_row + batch.num_rows, dtype=np.int64)
        next_row += batch.num_rows
        for table, size, rejects in _parquet_slices(batch, numbers, columns, limits):
            if rejects:
                yield Chunk("columns", _NO_COLUMNS, rejects)
            if table is None:
                continue
            if pending and (
                pending_rows + table.num_rows > batch_rows
                or pending_bytes + size > limits.chunk_bytes
            ):
                yield Chunk("columns", pa.concat_tables(pending))
                pending, pending_rows, pending_bytes = [], 0, 0
            pending.append(table)
            pending_rows += table.num_rows
            pending_bytes += size
    if pending:
        yield Chunk("columns", pa.concat_tables(pending))
    if readable < parquet.metadata.num_row_groups:
        raise BrokenFileError(
            "file_too_large",
            f"{name} holds more than {mib(limits.max_decompressed_bytes)} of column data, the"
            f" limit for one landing file: rows 1-{next_row - 1} were read, the rest was not"
            " (split the export into smaller files)",
        )
