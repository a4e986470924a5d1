"""A large file is ingested in one transaction: its chunks must not pile up in memory."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.lib.ingest import load, readers
from pipelines.lib.ingest.files import discover_landing_files
from pipelines.lib.warehouse import apply_migrations

ROWS = 60_000
BATCH_ROWS = 5_000


def _write_events(path: Path) -> None:
    numbers = range(ROWS)
    pq.write_table(
        pa.table(
            {
                "messageId": [f"m-{i}" for i in numbers],
                "type": ["track"] * ROWS,
                "event": ["Project Viewed"] * ROWS,
                "userId": [f"u-{i % 500}" for i in numbers],
                "timestamp": ["2026-11-01T10:00:00Z"] * ROWS,
                # Bulky on purpose, so a retained chunk shows in Arrow's allocation count.
                "properties": ['{"note": "' + "x" * 400 + f'", "i": {i}}}' for i in numbers],
            }
        ),
        path,
    )


def test_arrow_memory_stays_flat_across_the_chunks_of_one_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    _write_events(landing / "big.parquet")
    monkeypatch.setattr(readers, "PARQUET_BATCH_ROWS", BATCH_ROWS)
    allocated: list[int] = []
    load_chunk = load._load_chunk

    def measured(*args, **kwargs) -> None:
        load_chunk(*args, **kwargs)
        allocated.append(pa.total_allocated_bytes())

    monkeypatch.setattr(load, "_load_chunk", measured)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    apply_migrations(con)
    summary = load.ingest_files(
        con,
        discover_landing_files(landing),
        reference_time=datetime(2026, 11, 24, tzinfo=UTC),
    )

    assert summary.errors == [] and summary.total("rows_loaded") == ROWS
    assert len(allocated) == ROWS // BATCH_ROWS
    # One chunk of this file holds ~2.5 MB of properties; were each chunk kept until the
    # commit, the last measurement would be ~25 MB above the second.
    growth = allocated[-1] - allocated[1]
    assert growth < 5 * 1024 * 1024, allocated
