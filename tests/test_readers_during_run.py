"""Readers never block a run, and a run never blocks readers (docs/architecture.md §9).

A reader holds one connection for the whole of a `bis run` and queries the marts every
second; another opens a new connection every second. The run completes, every query
succeeds, and every answer is the marts as one complete build left them: the state before
the run or the state after it, never a mix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines.lib.published import open_reader
from pipelines.lib.settings import load_settings
from tests.conftest import ENGINES
from tests.support.published_reader import read_state

PROJECT = Path(__file__).resolve().parents[1]
DAY_1 = "2026-11-24T15:00:00Z"
DAY_2 = "2026-11-25T15:00:00Z"
TIMEOUT = 600


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """The warehouse engine the readers and the run share: on DuckDB readers open the
    published copy, on PostgreSQL an ordinary connection to the server (MVCC)."""
    return request.param


def bis(data_dir: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", *args],  # this checkout's code
        cwd=PROJECT,
        env={**os.environ, "BIS_DATA_DIR": str(data_dir), "BIS_ENV": "dev", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finished(process: subprocess.Popen[str]) -> str:
    out, _ = process.communicate(timeout=TIMEOUT)
    return f"exit {process.returncode}\n{out}"


def reader(data_dir: Path, mode: str, files: dict[str, Path]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.published_reader",
            mode,
            str(files[mode]),
            str(files["stop"]),
            str(files["run_done"]),
        ],
        cwd=PROJECT,
        env={**os.environ, "BIS_DATA_DIR": str(data_dir), "BIS_ENV": "dev"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def lines_of(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def wait_for_first_query(path: Path, process: subprocess.Popen[str]) -> None:
    """Until the reader has answered once (its connection is open), or it has died."""
    deadline = time.monotonic() + TIMEOUT
    while not lines_of(path) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)


def current_state() -> dict[str, Any]:
    """The marts a reader opening now sees (BIS_DATA_DIR is the test's data dir)."""
    with open_reader(load_settings()) as con:
        return read_state(con)


def marts_of(state: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in state.items() if k != "ledger_rows"}


def assert_consistent(state: dict[str, Any]) -> None:
    """Related marts agree with each other: they come from one build."""
    assert state["users"] > 0, state
    assert state["progress_rows"] == state["users"], state
    assert state["kpi_signups"] == state["users"], state
    assert state["segment_rows"] == state["users_in_a_segment"], state


@pytest.fixture
def reader_files(tmp_path: Path) -> Iterator[dict[str, Path]]:
    files = {
        "hold": tmp_path / "hold.jsonl",
        "reopen": tmp_path / "reopen.jsonl",
        "stop": tmp_path / "stop",
        "run_done": tmp_path / "run_done",
    }
    yield files
    files["stop"].touch()  # a reader left behind by a failed assertion stops too


@pytest.mark.slow
def test_readers_and_a_run_never_block_each_other_nor_see_half_built_marts(
    warehouse_url: str, data_dir: Path, reader_files: dict[str, Path]
) -> None:
    # `warehouse_url` sets BIS_WAREHOUSE_URL for this process and the commands it starts.
    generate = ("generate", "--users", "300", "--days", "30")
    first = finished(bis(data_dir, *generate, "--as-of", DAY_1))
    assert first.startswith("exit 0\n"), first
    first = finished(bis(data_dir, "run", "--as-of", DAY_1))
    assert first.startswith("exit 0\n"), first
    before = current_state()
    # The next day brings new users: the run below changes every mart.
    more = finished(bis(data_dir, *generate, "--seed", "8", "--as-of", DAY_2))
    assert more.startswith("exit 0\n"), more

    holding = reader(data_dir, "hold", reader_files)
    wait_for_first_query(reader_files["hold"], holding)
    # A reader on today's single file would make the run wait this long, then fail.
    run = bis(data_dir, "run", "--as-of", DAY_2, BIS_WAREHOUSE_WAIT="20")
    reopening = reader(data_dir, "reopen", reader_files)
    run_output = finished(run)
    reader_files["run_done"].touch()
    reader_files["stop"].touch()
    reader_outputs = [finished(holding), finished(reopening)]
    after = current_state()

    assert run_output.startswith("exit 0\n"), run_output
    assert "dbt build: ok" in run_output, run_output
    for output in reader_outputs:
        assert output.startswith("exit 0\n"), output
    assert_consistent(before)
    assert_consistent(after)
    assert marts_of(before) != marts_of(after)  # the run did change what readers see
    held, reopened = lines_of(reader_files["hold"]), lines_of(reader_files["reopen"])
    for line in held + reopened:
        assert "error" not in line, line
        assert marts_of(line["state"]) in (marts_of(before), marts_of(after)), line
        assert line["state"]["ledger_rows"] in (before["ledger_rows"], after["ledger_rows"])
    # Both readers queried while the run was going on: the held connection throughout, and
    # the reopening reader opened the file mid-run.
    assert any(line["during_run"] for line in held), held
    assert any(line["during_run"] for line in reopened), reopened
