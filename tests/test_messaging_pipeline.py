"""End to end: `bis run` sends through the outbox, never twice, only what is due, on both
warehouse engines (docs/architecture.md §16)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.lib.messaging.checks import INVARIANTS, violations
from pipelines.lib.warehouse import connect
from tests.conftest import ENGINES

DAY_1 = "2026-11-24T15:00:00Z"  # daytime in Europe and the Americas
DAY_2 = "2026-11-25T15:00:00Z"


def run(capsys: pytest.CaptureFixture[str], as_of: str) -> tuple[int, str]:
    code = main(["run", "--as-of", as_of])
    output = capsys.readouterr().out
    assert code == 0, output
    match = re.search(r"send via outbox: sent (\d+), failed (\d+), unknown (\d+)", output)
    assert match, output
    return int(match.group(1)), output


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


def outbox_files(data_dir: Path) -> set[str]:
    return {p.stem for p in (data_dir / "outbox").rglob("*.eml")}


@pytest.mark.slow
def test_outbox_sends_once_and_only_what_is_newly_due(
    data_dir: Path, warehouse_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", "--users", "400", "--days", "30", "--as-of", DAY_1]) == 0
    capsys.readouterr()

    sent_first, _ = run(capsys, DAY_1)
    first_files = outbox_files(data_dir)
    sent_again, _ = run(capsys, DAY_1)
    sent_next_day, next_day_output = run(capsys, DAY_2)
    all_files = outbox_files(data_dir)

    # dbt re-parses only what changed between runs (the clock travels as BIS_AS_OF, not as a
    # var), and the cached parse still builds at the new clock.
    assert (data_dir / "dbt_state" / "partial_parse.msgpack").exists()
    assert "KPIs as of 2026-11-25:" in next_day_output

    assert sent_first > 50 and len(first_files) == sent_first
    assert sent_again == 0
    assert sent_next_day > 0
    assert len(all_files) == sent_first + sent_next_day  # new files only, none rewritten
    with connect(warehouse_url, read_only=True) as con:
        sent_ids = {
            r[0]
            for r in con.execute(
                "select send_id from messaging.sends where status = 'sent'"
            ).fetchall()
        }
        for name in INVARIANTS:
            assert violations(con, name) == [], name
        statuses = {
            r[0] for r in con.execute("select distinct status from messaging.sends").fetchall()
        }
    assert sent_ids == all_files
    assert statuses <= {"sent", "held_out", "suppressed", "capped", "deferred", "cancelled"}


@pytest.mark.slow
def test_status_is_ready_in_dev_after_a_run_and_blocked_in_prod_without_a_key(
    warehouse_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["generate", "--users", "150", "--days", "20", "--as-of", DAY_1]) == 0
    run(capsys, DAY_1)

    assert main(["status"]) == 0, capsys.readouterr().out
    capsys.readouterr()

    monkeypatch.setenv("BIS_ENV", "prod")
    monkeypatch.setenv("BIS_WAREHOUSE_URL", warehouse_url)  # outside dev it must be explicit
    for name in ("SENDGRID_API_KEY", "BIS_FROM_EMAIL", "BIS_UNSUBSCRIBE_URL", "BIS_POSTAL_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BIS_FROM_EMAIL", "hello@example.com")
    monkeypatch.setenv("BIS_UNSUBSCRIBE_URL", "https://example.com/u")
    monkeypatch.setenv("BIS_POSTAL_ADDRESS", "1 Example Street")
    code = main(["status"])
    out = capsys.readouterr().out
    assert code == 1
    assert "FAIL" in out and "SENDGRID_API_KEY" in out
