"""`bis user-metrics` and the user_progress export: what a user sees about themself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.lib.published import PUBLISHED_FILE, publish
from pipelines.lib.user_metrics import export_user_progress
from pipelines.lib.warehouse import open_warehouse
from tests.lib.messaging.conftest import MARTS_DDL, add_user


@pytest.fixture
def progress(data_dir: Path) -> Path:
    path = data_dir / "warehouse.duckdb"
    with open_warehouse(path) as con:
        con.execute(MARTS_DDL)
        add_user(con, "u1", steps=1)  # next: "Profile Completed" in the fixture's progress row
        add_user(con, "u2", steps=4)
        con.execute("update marts.user_progress set next_step_name = null where user_id = 'u2'")
        publish(con, data_dir / PUBLISHED_FILE)  # what `bis user-metrics` reads
    return path


def test_user_metrics_json_has_the_row_and_the_next_action(
    progress: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIS_APP_URL", "https://app.test")
    assert main(["user-metrics", "u1", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["steps_completed"] == 1 and metrics["percent_complete"] == 25.0
    assert metrics["next_action"] == {
        "label": "Complete your profile",
        "url": "https://app.test/settings/profile",
    }
    assert main(["user-metrics", "u2"]) == 0
    assert "next: onboarding complete" in capsys.readouterr().out


def test_unknown_user_exits_1_with_a_clear_message(
    progress: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["user-metrics", "ghost"]) == 1
    assert "no progress metrics for user 'ghost'" in capsys.readouterr().err


def test_export_writes_every_user_as_json_lines(progress: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports" / "user_progress.jsonl"
    with open_warehouse(progress) as con:
        assert export_user_progress(con, out) == 2
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["user_id"] for r in rows] == ["u1", "u2"]
    assert rows[1]["next_action"] is None
    assert not list(out.parent.glob(".*.tmp"))
