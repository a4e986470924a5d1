"""The send loop against a local SendGrid v3 server: batching, faults, ceiling, SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from pipelines.lib.email import SenderIdentity, SendGridSender, TemplateRenderer
from pipelines.lib.messaging.checks import INVARIANTS, violations
from pipelines.lib.messaging.gate import SendGate
from pipelines.lib.messaging.send import SendCeilingExceeded, send_planned
from pipelines.lib.settings import FLAGS_FILE
from pipelines.lib.warehouse import open_warehouse
from tests.lib.messaging.conftest import MARTS_DDL, T
from tests.support.fake_sendgrid import FakeSendGrid

IDENTITY = SenderIdentity(
    from_email="hello@example.com",
    from_name="BIS",
    unsubscribe_url="https://example.com/unsubscribe",
    postal_address="1 Example Street, Springfield",
    app_url="https://app.example.com",
)


def plant(
    con: duckdb.DuckDBPyConnection, count: int, *, templates: tuple[str, ...] = ("test/first",)
) -> None:
    """`count` planned ledger rows (and their users), spread over `templates`."""
    con.execute(MARTS_DDL)
    con.execute(f"""
        insert into marts.dim_users (user_id, email, name, timezone, has_valid_timezone)
        select 'u' || lpad(i::varchar, 5, '0'), 'u' || i || '@example.com', 'Ann ' || i,
               'UTC', true
        from range({count}) t(i)
    """)
    con.execute(f"""
        insert into marts.user_progress (user_id, steps_completed, next_step_name)
        select 'u' || lpad(i::varchar, 5, '0'), 1, 'First Project Created' from range({count}) t(i)
    """)
    templates_sql = ", ".join(f"'{t}'" for t in templates)
    pick = f"([{templates_sql}])[1 + i % {len(templates)}]"
    con.execute(
        f"""
        insert into messaging.sends (send_id, user_id, email, sequence_id, step_id, template,
            enrollment_key, status, variant, flag_key, flag_state, flag_reason, attempts,
            due_at, plan_id, planned_at, updated_at)
        select md5('s' || i), 'u' || lpad(i::varchar, 5, '0'), 'u' || i || '@example.com',
               'seq', {pick}, {pick},
               $t, 'planned', 'treatment', 'nurture_stalled', 'on', 'on', 0, $t, 'p1', $t, $t
        from range({count}) t(i)
    """,
        {"t": T - timedelta(hours=1)},
    )


def dev_gate() -> SendGate:
    """The send-time gate on the committed flags, in dev (where every flag is on)."""
    return SendGate(FLAGS_FILE, "dev")


def sendgrid(server: FakeSendGrid, templates_dir: Path, **kwargs) -> SendGridSender:
    options = {"sandbox": False, "base_delay": 0.01, "max_delay": 2.0, "timeout": 2.0, **kwargs}
    return SendGridSender(
        api_key=server.api_key,
        host=server.url,
        renderer=TemplateRenderer(templates_dir, IDENTITY),
        identity=IDENTITY,
        **options,
    )


def counts(con) -> dict[str, int]:
    return dict(con.execute("select status, count(*) from messaging.sends group by 1").fetchall())


def assert_invariants(con) -> None:
    for name in INVARIANTS:
        assert violations(con, name) == [], name


def test_one_template_of_2500_goes_out_in_3_requests(ledger, sequences_dir) -> None:
    plant(ledger, 2500)
    with FakeSendGrid() as server:
        report = send_planned(
            ledger,
            sender=sendgrid(server, sequences_dir / "templates"),
            run_id="r1",
            max_sends_per_run=10_000,
            gate=dev_gate(),
            clock=T,
        )
        sizes = [len(r.send_ids) for r in server.accepted]
        accepted = server.accepted_send_ids()
    assert sizes == [1000, 1000, 500]
    assert report.requests == 3
    assert len(accepted) == len(set(accepted)) == 2500
    assert counts(ledger) == {"sent": 2500}
    assert_invariants(ledger)


def test_faults_end_in_sent_once_failed_or_unknown(ledger, sequences_dir) -> None:
    # Six templates of 10 messages: six requests, each meeting a different fault.
    templates = ("test/first", "test/second", "t2/a", "t2/b", "t2/c", "t2/d")
    for name in templates[2:]:
        for part in ("subject", "html", "txt"):
            path = sequences_dir / "templates" / f"{name}.{part}.j2"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("Hello {{ user.first_name or 'there' }}\n")
    plant(ledger, 60, templates=templates)
    with FakeSendGrid() as server:
        server.fail_next(429, headers={"X-RateLimit-Reset": str(int(time.time()) + 1)})
        server.fail_next(500)
        sender = sendgrid(server, sequences_dir / "templates")
        report = send_planned(
            ledger, sender=sender, run_id="r1", max_sends_per_run=100, gate=dev_gate(), clock=T
        )
        accepted_first = server.accepted_send_ids()
        # A second round of three requests meets a 400, a slow answer and a dropped connection.
        ledger.execute(
            "update messaging.sends set status = 'planned', attempts = 0"
            " where template in ('test/first', 'test/second', 't2/a')"
        )
        server.accepted.clear()
        server.fail_next(400, body={"errors": [{"message": "invalid from address"}]})
        server.delay_next(4.0)
        server.drop_next()
        second = send_planned(
            ledger, sender=sender, run_id="r2", max_sends_per_run=100, gate=dev_gate(), clock=T
        )
        accepted_second = server.accepted_send_ids()
    assert report.statuses == {"sent": 60}  # 429 and 500 were retried
    assert len(accepted_first) == len(set(accepted_first)) == 60
    assert set(second.statuses) <= {"sent", "failed", "unknown"}
    assert second.statuses["failed"] == 10 and second.statuses["unknown"] == 20
    failed = ledger.execute(
        "select last_error from messaging.sends where status = 'failed'"
    ).fetchall()
    assert all("invalid from address" in e for (e,) in failed)
    assert len(accepted_second) == len(set(accepted_second))
    assert (
        ledger.execute("select count(*) from messaging.sends where status = 'sending'").fetchone()[
            0
        ]
        == 0
    )
    assert server.api_key not in " ".join(
        e or "" for (e,) in ledger.execute("select last_error from messaging.sends").fetchall()
    )


def test_ceiling_fails_before_anything_is_sent(ledger, sequences_dir) -> None:
    plant(ledger, 5)
    with FakeSendGrid() as server:
        with pytest.raises(SendCeilingExceeded, match="5 messages are planned"):
            send_planned(
                ledger,
                sender=sendgrid(server, sequences_dir / "templates"),
                run_id="r1",
                max_sends_per_run=4,
                gate=dev_gate(),
                clock=T,
            )
        assert server.requests == []
    assert counts(ledger) == {"planned": 5}


CHILD = """
import sys
from pathlib import Path
from pipelines.lib.email import SenderIdentity, SendGridSender, TemplateRenderer
from pipelines.lib.messaging.send import send_planned
from pipelines.lib.warehouse import open_warehouse
from tests.lib.messaging.test_send import IDENTITY, T, dev_gate

warehouse_url, host, key, templates = sys.argv[1:5]
sender = SendGridSender(api_key=key, host=host, renderer=TemplateRenderer(Path(templates),
                        IDENTITY), identity=IDENTITY, sandbox=False, timeout=60)
with open_warehouse(warehouse_url) as con:
    send_planned(con, sender=sender, run_id="killed-run", max_sends_per_run=10_000,
                 gate=dev_gate(), clock=T)
"""


@pytest.mark.slow
def test_sigkill_mid_batch_then_rerun_sends_no_duplicate(
    tmp_path: Path, sequences_dir, warehouse_url: str
) -> None:
    # On PostgreSQL the server ends the killed child's session and its open transaction.
    with open_warehouse(warehouse_url) as con:
        plant(con, 2500)
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD))
    with FakeSendGrid() as server:
        server.delay_next(60, when=lambda request: len(server.requests) >= 2)
        child = subprocess.Popen(
            [
                sys.executable,
                str(script),
                warehouse_url,
                server.url,
                server.api_key,
                str(sequences_dir / "templates"),
            ],
            cwd=Path(__file__).resolve().parents[3],
            env={**os.environ, "PYTHONPATH": "."},
        )
        deadline = time.monotonic() + 60
        while len(server.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(server.requests) >= 2, "the child never reached its second batch"
        os.kill(child.pid, signal.SIGKILL)  # mid-batch: rows are `sending`, no answer yet
        child.wait(timeout=30)
        with open_warehouse(warehouse_url) as con:
            assert counts(con).get("sending") == 1000
            report = send_planned(
                con,
                sender=sendgrid(server, sequences_dir / "templates"),
                run_id="rerun",
                max_sends_per_run=10_000,
                gate=dev_gate(),
                clock=T,
            )
            final = counts(con)
            assert_invariants(con)
        accepted = server.accepted_send_ids()
    assert report.orphans_marked_unknown == 1000
    assert final == {"sent": 1500, "unknown": 1000}
    assert len(accepted) == len(set(accepted))  # nothing reached the server twice
