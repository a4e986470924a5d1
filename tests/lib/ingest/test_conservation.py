"""Counts add up on generated data with malformed records mixed in, in every format:
every malformed record is rejected with the code it was made for, every re-sent duplicate
is counted as one, and everything else is loaded."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines.lib.ingest import ingest_landing_folder
from pipelines.lib.ingest.checks import unbalanced_files
from pipelines.lib.sample_data import generate_sample

END_AT = datetime(2026, 11, 24, tzinfo=UTC)


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz", "csv", "parquet"])
def test_counts_add_up_with_bad_lines(fmt: str, landing: Path, warehouse) -> None:
    result = generate_sample(
        out_dir=landing,
        end_at=END_AT,
        users=150,
        days=30,
        seed=11,
        fmt=fmt,
        bad_lines=40,
        progress=False,
    )

    summary = ingest_landing_folder(warehouse, landing, reference_time=END_AT)

    assert summary.errors == []
    [report] = summary.files
    assert report.balanced
    assert report.rows_read == result.events + sum(result.bad_records.values())
    assert dict(report.rejections) == {k: v for k, v in result.bad_records.items() if v}
    assert report.rows_duplicate == result.duplicates
    assert report.rows_loaded == result.events - result.duplicates
    assert unbalanced_files(warehouse) == []
    stored = warehouse.execute(
        "select rows_read, rows_loaded, rows_rejected, rows_duplicate from raw.ingested_files"
    ).fetchone()
    assert stored == (
        report.rows_read,
        report.rows_loaded,
        report.rows_rejected,
        report.rows_duplicate,
    )
    kept = warehouse.execute(
        "select count(*) from raw.events_rejected where raw_record is not null"
    ).fetchone()[0]
    assert kept == report.rows_rejected


def test_generated_formats_load_identical_events(tmp_path: Path) -> None:
    from pipelines.lib.warehouse import open_warehouse
    from tests.lib.ingest.test_loading import events_rows

    rows = {}
    for fmt in ("jsonl", "parquet", "csv"):
        folder = tmp_path / fmt
        generate_sample(
            out_dir=folder, end_at=END_AT, users=120, days=20, seed=5, fmt=fmt, progress=False
        )
        with open_warehouse(tmp_path / f"{fmt}.duckdb") as con:
            assert ingest_landing_folder(con, folder, reference_time=END_AT).errors == []
            rows[fmt] = events_rows(con)
    assert len(rows["jsonl"]) > 1000
    assert rows["parquet"] == rows["jsonl"]
    assert rows["csv"] == rows["jsonl"]
