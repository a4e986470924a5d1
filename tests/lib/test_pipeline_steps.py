"""The steps `bis run`/`bis send` sequence: invariant checks fail the run loudly, a failed
blocking check stops what follows, one run's ids share its clock, and the guardrails are
set on the command line."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from pipelines.cli import main
from pipelines.lib import pipeline
from pipelines.lib.messaging.checks import LEDGER_INVARIANTS
from pipelines.lib.messaging.policy import Guardrails, guardrails_with
from pipelines.lib.settings import load_settings
from pipelines.lib.steps import build_run_context, checks_step, warehouse_opener
from pipelines.lib.warehouse import open_warehouse
from tests.lib.messaging.conftest import MARTS_DDL, T, add_user

AS_OF = T.isoformat()


@pytest.fixture
def marts(data_dir: Path) -> Path:
    """Three stalled users the real sequences plan a nudge for."""
    with open_warehouse(data_dir / "warehouse.duckdb") as con:
        con.execute(MARTS_DDL)
        for i in range(3):
            add_user(con, f"u{i}", steps=1, segment="stalled")
    return data_dir / "warehouse.duckdb"


def add_sent_row(con: duckdb.DuckDBPyConnection, send_id: str, user_id: str) -> None:
    """A ledger row that went out two days before T, as a send run writes it."""
    sent_at = T - timedelta(days=2)
    con.execute(
        """
        insert into messaging.sends (send_id, user_id, email, sequence_id, step_id, template,
            enrollment_key, status, variant, flag_key, flag_state, flag_reason, attempts,
            due_at, plan_id, planned_at, sent_at, updated_at)
        values (?, ?, ? || '@example.com', 'stalled_onboarding', 'nudge_1',
            'stalled/nudge_1', ?, 'sent', 'treatment', 'nurture_stalled', 'on',
            'on', 1, ?, 'plan-old', ?, ?, ?)
        """,
        [send_id, user_id, user_id, sent_at, sent_at, sent_at, sent_at, sent_at],
    )


def bis(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str]]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, (captured.out + captured.err).splitlines()


def failed_checks(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("check FAILED: ")]


def test_bis_send_passes_its_ledger_checks(marts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = bis(capsys, "send", "--as-of", AS_OF)
    assert code == 0, lines
    assert "checks (ledger): 4 of 4 passed" in lines
    assert failed_checks(lines) == []


def test_a_duplicate_send_fails_bis_send_with_the_check_line(
    marts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_warehouse(marts) as con:  # the same message went out twice
        add_sent_row(con, "dup-a", "ghost")
        add_sent_row(con, "dup-b", "ghost")
    code, lines = bis(capsys, "send", "--as-of", AS_OF)
    assert code == 1, lines
    [line] = failed_checks(lines)
    assert line.startswith("check FAILED: no_duplicate_sends: 1 violation(s) of 'no (user,")
    assert "'ghost', 'stalled_onboarding', 'nudge_1'" in line
    # Not blocking: the rest of the run happened (the three users were sent their nudge).
    assert any(line.startswith("send via outbox: sent 3") for line in lines), lines


def test_a_send_to_a_suppressed_address_fails_bis_send(
    marts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_warehouse(marts) as con:
        add_sent_row(con, "to-unsubscribed", "gone")
        con.execute(
            "insert into messaging.suppressions values"
            " ('GONE@example.com', null, 'unsubscribe', 'test', ?)",
            [T - timedelta(days=3)],
        )
    code, lines = bis(capsys, "send", "--as-of", AS_OF)
    assert code == 1, lines
    [line] = failed_checks(lines)
    assert line.startswith("check FAILED: no_send_to_suppressed: 1 violation(s)")
    assert "to-unsubscribed" in line and "unsubscribe" in line


def test_a_failed_blocking_check_stops_the_stages_after_it(marts: Path) -> None:
    with open_warehouse(marts) as con:  # a file whose counts do not add up
        con.execute(
            "insert into raw.ingested_files values ('a.jsonl', 'abc', 'jsonl', 10, 5, 3, 1, 0, ?)",
            [T],
        )
    run = build_run_context(load_settings(), T)
    report = pipeline.run_stages(run, [pipeline.INGEST_CHECKS, pipeline.EMAIL_EVENTS])
    assert report.failed
    assert list(report.results) == ["ingest_checks"]  # email events never ran
    assert report.lines[0] == "checks (raw events): 1 of 2 passed"
    assert report.lines[1].startswith(
        "check FAILED: ingested_files_counts_add_up: 1 violation(s) of 'rows_read = loaded"
    )
    assert "('a.jsonl', 5, 3, 1, 0)" in report.lines[1]


def test_a_check_counts_every_violation_and_shows_a_few(marts: Path) -> None:
    with open_warehouse(marts) as con:
        for i in range(25):
            add_sent_row(con, f"h{i}", f"holdout{i}")
        con.execute("update messaging.sends set variant = 'holdout'")
    result = checks_step(warehouse_opener(load_settings()), "ledger", LEDGER_INVARIANTS)
    [outcome] = [o for o in result.outcomes if not o.passed]
    assert (outcome.name, outcome.violations, len(outcome.examples)) == (
        "no_send_to_holdout",
        25,
        20,
    )
    assert outcome.why().startswith("25 violation(s)")


def test_one_run_ids_share_the_clock_and_a_token(
    marts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = bis(capsys, "send", "--as-of", AS_OF)
    assert code == 0, lines
    with duckdb.connect(str(marts), read_only=True) as con:
        ids = set(con.execute("select plan_id, send_run_id from messaging.sends").fetchall())
    [(plan_id, send_run_id)] = ids
    match = re.fullmatch(r"plan-20261124T150000Z-([0-9a-f]{8})", plan_id)
    assert match, plan_id
    assert send_run_id == f"send-20261124T150000Z-{match.group(1)}"


def test_guardrails_are_set_on_the_command_line(
    marts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = bis(capsys, "send", "--as-of", AS_OF, "--cap-per-day", "0")
    assert code == 0, lines
    [plan_line] = [line for line in lines if line.startswith("plan ")]
    assert "planned 0," in plan_line and "capped 3," in plan_line

    # The next plan re-decides the capped rows under the default cap: 3 planned, above 2.
    code, lines = bis(capsys, "send", "--as-of", AS_OF, "--max-sends-per-run", "2")
    assert code == 1, lines
    assert "send: STOPPED 3 messages are planned but max_sends_per_run is 2" in "\n".join(lines)

    code, lines = bis(capsys, "send", "--as-of", AS_OF, "--quiet-end-hour", "24")
    assert code == 1 and lines == ["bis send: quiet_end_hour must be an hour 0-23, got 24"]


def test_guardrails_with_keeps_the_defaults_it_is_not_given() -> None:
    assert guardrails_with({"cap_per_day": None, "cap_per_week": 5}) == Guardrails(cap_per_week=5)
    with pytest.raises(ValueError, match="unknown guardrails: caps"):
        guardrails_with({"caps": 1})
