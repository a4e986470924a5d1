"""Shared fixtures: an isolated data dir and warehouse per test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from pipelines.lib.warehouse import open_warehouse


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh BIS_DATA_DIR for the test, with the landing folder created."""
    directory = tmp_path / "data"
    (directory / "landing" / "events").mkdir(parents=True)
    monkeypatch.setenv("BIS_DATA_DIR", str(directory))
    monkeypatch.setenv("BIS_ENV", "dev")
    return directory


@pytest.fixture
def landing(data_dir: Path) -> Path:
    return data_dir / "landing" / "events"


@pytest.fixture
def warehouse(data_dir: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with open_warehouse(data_dir / "warehouse.duckdb") as con:
        yield con


def write_jsonl(path: Path, records: list) -> Path:
    """Records as JSON Lines; a bytes or str item is written as that exact line."""
    with path.open("wb") as handle:
        for record in records:
            if isinstance(record, bytes):
                line = record
            elif isinstance(record, str):
                line = record.encode()
            else:
                line = json.dumps(record).encode()
            handle.write(line + b"\n")
    return path
