"""The ledger's clock never goes backwards, and outside dev never runs far ahead of the machine.

A plan at an earlier clock would cancel waiting rows for good (their steps are not due yet
in the past); a clock far ahead sends what is not due. Both are refused before any change.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.lib.messaging.ledger_clock import PipelineClockError
from pipelines.lib.messaging.plan import plan_messages
from pipelines.lib.warehouse import open_warehouse
from tests.lib.messaging.conftest import MARTS_DDL, T, add_user

NIGHT = T + timedelta(hours=6)  # 21:00 UTC, 22:00 in Paris: quiet hours, rows are deferred


def ledger_snapshot(con) -> tuple[list, list]:
    sends = con.execute("select * from messaging.sends order by send_id").fetchall()
    plans = con.execute("select * from messaging.plans order by plan_id").fetchall()
    return sends, plans


def plan_at(con, sequences, flags, as_of, plan_id, **kwargs):
    return plan_messages(
        con,
        sequences=sequences,
        flags=flags,
        env=kwargs.pop("env", "dev"),
        as_of=as_of,
        plan_id=plan_id,
        **kwargs,
    )


@pytest.mark.parametrize(
    "earlier", [timedelta(seconds=1), timedelta(days=1), NIGHT - T.replace(year=1999)]
)
def test_a_plan_before_the_latest_plan_is_refused_and_changes_nothing(
    ledger, test_sequences, flags, earlier: timedelta
) -> None:
    for user in ("d1", "d2", "d3"):
        add_user(ledger, user, steps=1, segment="stalled")
    first = plan_at(ledger, test_sequences, flags, NIGHT, "p-night")
    assert first.total("deferred") == 3
    before = ledger_snapshot(ledger)
    with pytest.raises(PipelineClockError, match="never goes backwards") as refused:
        plan_at(ledger, test_sequences, flags, NIGHT - earlier, "p-earlier")
    assert "p-night" in str(refused.value)
    assert ledger_snapshot(ledger) == before  # the deferred rows are still waiting
    # The same clock again, or a later one, is fine: the deferred rows go out in the morning.
    plan_at(ledger, test_sequences, flags, NIGHT, "p-again")
    morning = plan_at(ledger, test_sequences, flags, NIGHT + timedelta(hours=12), "p-morning")
    assert morning.total("planned") == 3
    assert sum(morning.cancelled.values()) == 0


def test_a_preview_may_look_at_any_clock(ledger, test_sequences, flags) -> None:
    add_user(ledger, "v1", steps=1, segment="stalled")
    plan_at(ledger, test_sequences, flags, NIGHT, "p-night")
    before = ledger_snapshot(ledger)
    preview = plan_at(
        ledger,
        test_sequences,
        flags,
        T - timedelta(days=1),
        "preview",
        only_user_id="v1",
        dry_run=True,
    )
    assert preview.plan_id == "preview"
    assert ledger_snapshot(ledger) == before


@pytest.mark.parametrize(
    ("env", "ahead", "allow", "refused"),
    [
        ("staging", timedelta(days=1), False, True),
        ("prod", timedelta(minutes=16), False, True),
        ("prod", timedelta(days=27000), False, True),
        ("prod", timedelta(minutes=14), False, False),
        ("prod", timedelta(days=1), True, False),
        ("dev", timedelta(days=365), False, False),
    ],
)
def test_outside_dev_a_clock_far_ahead_of_the_machine_is_refused(
    ledger, test_sequences, flags, env: str, ahead: timedelta, allow: bool, refused: bool
) -> None:
    add_user(ledger, "f1", steps=1, segment="stalled")
    machine = T  # the machine's clock, injected: the rule compares the two clocks only
    attempt = lambda: plan_at(  # noqa: E731
        ledger,
        test_sequences,
        flags,
        machine + ahead,
        "p-future",
        env=env,
        wall_now=machine,
        allow_future_clock=allow,
    )
    if refused:
        before = ledger_snapshot(ledger)
        with pytest.raises(PipelineClockError, match="ahead of this machine's clock"):
            attempt()
        assert ledger_snapshot(ledger) == before
    else:
        attempt()
        assert ledger.execute("select count(*) from messaging.plans").fetchone()[0] == 1


def _warehouse_with_a_plan(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = data_dir / "warehouse.duckdb"
    with open_warehouse(path) as con:
        con.execute(MARTS_DDL)
        for user in ("c1", "c2"):
            add_user(con, user, steps=1, segment="stalled")
    monkeypatch.setenv("BIS_EMAIL_SENDER", "outbox")
    assert main(["send", "--as-of", NIGHT.isoformat()]) == 0
    return path


def test_bis_send_with_an_old_clock_is_refused_with_one_line(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    path = _warehouse_with_a_plan(data_dir, monkeypatch)
    capsys.readouterr()
    with open_warehouse(path) as con:
        before = ledger_snapshot(con)
    assert main(["send", "--as-of", "1999-01-01T12:00:00Z"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith("bis send: the pipeline clock 1999-01-01T12:00:00Z is before")
    with open_warehouse(path) as con:
        assert ledger_snapshot(con) == before


def test_bis_run_with_an_old_clock_is_refused_before_ingest(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    path = _warehouse_with_a_plan(data_dir, monkeypatch)
    # A landing file that ingest would judge against the (wrong) clock if it got that far.
    (data_dir / "landing" / "events" / "late.jsonl").write_text(
        '{"type": "track", "event": "Signed Up", "userId": "z1",'
        f' "timestamp": "{T.isoformat()}"}}\n'
    )
    capsys.readouterr()
    assert main(["run", "--as-of", "1999-01-01T12:00:00Z"]) == 1
    assert "never goes backwards" in capsys.readouterr().err
    with open_warehouse(path) as con:
        assert con.execute("select count(*) from raw.events_rejected").fetchone()[0] == 0
        assert con.execute("select count(*) from raw.ingested_files").fetchone()[0] == 0


def test_bis_send_far_ahead_in_prod_is_refused_unless_allowed(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    path = data_dir / "warehouse.duckdb"
    with open_warehouse(path) as con:
        con.execute(MARTS_DDL)
    monkeypatch.setenv("BIS_ENV", "prod")
    monkeypatch.setenv("BIS_WAREHOUSE_URL", f"duckdb://{path}")
    assert main(["send", "--as-of", "2099-01-01T00:00:00Z"]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert "ahead of this machine's clock" in line and "--allow-future-clock" in line
    with open_warehouse(path) as con:
        assert con.execute("select count(*) from messaging.plans").fetchone()[0] == 0
