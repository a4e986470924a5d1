"""Rollback bites at send time: rows planned before a flag change are re-decided when claimed.

The drill: thousands of planned messages going out through the local SendGrid server while
an operator turns the kill switch off. At most the batch in flight goes out after the flag
file is written; everything else is cancelled with the reason.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import duckdb
import pytest

from pipelines.lib.email import SendGridSender, TemplateRenderer
from pipelines.lib.flags import EnvSetting, load_flags, unleash_bucket
from pipelines.lib.messaging.checks import INVARIANTS, violations
from pipelines.lib.messaging.gate import SendGate
from pipelines.lib.messaging.plan import plan_messages
from pipelines.lib.messaging.send import BATCH_SIZE, SendHalted, SendReport, send_planned
from pipelines.lib.ops import flags_set
from pipelines.lib.settings import FLAGS_FILE
from tests.lib.messaging.conftest import T, add_user
from tests.lib.messaging.test_send import IDENTITY
from tests.support.fake_sendgrid import FakeSendGrid

SEQUENCE_FLAG = "nurture_stalled"  # the flag of the test sequence `nudge_a`


@pytest.fixture
def flags_path(tmp_path: Path) -> Path:
    path = tmp_path / "flags.yaml"
    shutil.copyfile(FLAGS_FILE, path)
    return path


def add_stalled_users(con: duckdb.DuckDBPyConnection, count: int) -> None:
    """`count` users in the `stalled` segment, set-based (add_user is one row at a time)."""
    con.execute(
        f"""
        insert into marts.dim_users (user_id, email, name, timezone, has_valid_timezone,
            is_admin, signed_up_at, steps_completed, is_onboarding_started,
            is_onboarding_completed, last_active_at, events_last_7d, events_prev_7d,
            lifecycle_stage, nurture_segment)
        select 'u' || lpad(i::varchar, 5, '0'), 'u' || i || '@example.com', 'Ann ' || i,
               'Europe/Paris', true, false, $t - interval 3 day, 1, true, false,
               $t - interval 3 day, 0, 0, 'new', 'stalled'
        from range({count}) r(i)
    """,
        {"t": T},
    )
    con.execute(f"""
        insert into marts.user_progress
        select 'u' || lpad(i::varchar, 5, '0'), 1, 'Profile Completed', 25.0, 1, 1, 50
        from range({count}) r(i)
    """)
    con.execute(
        f"""
        insert into marts.user_segments
        select 'u' || lpad(i::varchar, 5, '0'), 'stalled', $t - interval 1 day
        from range({count}) r(i)
    """,
        {"t": T},
    )


def plan(con, sequences, flags_path: Path, plan_id: str = "p1", **kwargs):
    only_a = [s for s in sequences if s.flag == SEQUENCE_FLAG]
    return plan_messages(
        con,
        sequences=only_a,
        flags=load_flags(flags_path),
        env="dev",
        as_of=T,
        plan_id=plan_id,
        **kwargs,
    )


def sender_for(server: FakeSendGrid, sequences_dir: Path, **kwargs) -> SendGridSender:
    options = {"sandbox": False, "base_delay": 0.01, "max_delay": 1.0, "timeout": 10.0}
    return SendGridSender(
        api_key=server.api_key,
        host=server.url,
        renderer=TemplateRenderer(sequences_dir / "templates", IDENTITY),
        identity=IDENTITY,
        **{**options, **kwargs},
    )


def send(con, server, sequences_dir, flags_path: Path, run_id: str = "r1") -> SendReport:
    return send_planned(
        con,
        sender=sender_for(server, sequences_dir),
        run_id=run_id,
        max_sends_per_run=50_000,
        gate=SendGate(flags_path, "dev"),
        clock=T,
    )


def statuses(con) -> dict[str, int]:
    return dict(con.execute("select status, count(*) from messaging.sends group by 1").fetchall())


def reasons(con, status: str) -> set[str]:
    rows = con.execute(
        "select distinct status_reason from messaging.sends where status = ?", [status]
    ).fetchall()
    return {reason for (reason,) in rows}


def assert_invariants(con) -> None:
    for name in INVARIANTS:
        assert violations(con, name) == [], name


def test_rollback_drill_kill_switch_mid_send(
    ledger, test_sequences, sequences_dir, flags_path, record_property, engine: str
) -> None:
    total = 5 * BATCH_SIZE + 300
    add_stalled_users(ledger, total)
    assert plan(ledger, test_sequences, flags_path).total("planned") == total
    outcome: dict[str, object] = {}
    with FakeSendGrid() as server:
        # Every request takes a moment, as at the real provider: the operator acts while a
        # batch is on the wire.
        for _ in range(total // BATCH_SIZE + 1):
            server.delay_next(0.25)

        def run() -> None:
            try:
                outcome["report"] = send(ledger, server, sequences_dir, flags_path)
            except BaseException as exc:  # surfaced by the assertions below
                outcome["error"] = exc

        worker = threading.Thread(target=run)
        worker.start()
        deadline = time.monotonic() + 60
        while len(server.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(server.requests) >= 2, "the send never reached its second batch"
        code, lines = flags_set(flags_path, "messaging", "off", None, "dev", True)
        written_at = time.time()  # the flag file is in place from here on
        worker.join(timeout=120)
        assert not worker.is_alive()
        finished_at = time.time()
        after_write = [r for r in server.requests if r.received_at > written_at]
        accepted = server.accepted_send_ids()
        last_accepted_at = max(server.accepted_at)
    assert code == 0, lines
    assert "error" not in outcome, outcome.get("error")
    report = outcome["report"]
    # At most the batch that was in flight (claimed before the write) reaches the provider.
    assert len(after_write) <= 1
    assert len(accepted) == len(set(accepted)) <= 3 * BATCH_SIZE
    counts = statuses(ledger)
    assert counts == {"sent": len(accepted), "cancelled": total - len(accepted)}
    assert counts["cancelled"] >= total - 3 * BATCH_SIZE
    assert reasons(ledger, "cancelled") == {"flag messaging [dev] is off since the plan: off"}
    assert sum(report.cancelled.values()) == counts["cancelled"]
    assert_invariants(ledger)
    delay_ms = max(0.0, last_accepted_at - written_at) * 1000
    record_property(
        "rollback_drill",
        {
            "engine": engine,
            "planned": total,
            "sent_before_or_in_flight": len(accepted),
            "cancelled": counts["cancelled"],
            "requests_after_flag_written": len(after_write),
            "flag_written_to_last_send_ms": round(delay_ms),
            "flag_written_to_run_end_ms": round((finished_at - written_at) * 1000),
        },
    )


def test_narrowing_a_rollout_cancels_rows_outside_the_new_bucket(
    ledger, test_sequences, sequences_dir, flags_path
) -> None:
    add_stalled_users(ledger, 400)
    assert flags_set(flags_path, SEQUENCE_FLAG, "rollout", 50, "dev", True)[0] == 0
    planned = plan(ledger, test_sequences, flags_path).total("planned")
    assert flags_set(flags_path, SEQUENCE_FLAG, "rollout", 25, "dev", True)[0] == 0
    with FakeSendGrid() as server:
        send(ledger, server, sequences_dir, flags_path)
        accepted = set(server.accepted_send_ids())
    rows = ledger.execute("select send_id, user_id, status from messaging.sends").fetchall()
    assert len(rows) == planned
    for send_id, user_id, status in rows:
        bucket = unleash_bucket(SEQUENCE_FLAG, user_id)
        assert bucket <= 50  # the plan's audience
        expected = "sent" if bucket <= 25 else "cancelled"
        assert status == expected, (user_id, bucket)
        assert (send_id in accepted) == (expected == "sent")
    assert {r for r in reasons(ledger, "cancelled")} and all(
        r.startswith(f"flag {SEQUENCE_FLAG} [dev] is rollout 25% since the plan: rollout bucket")
        and r.endswith("> 25")
        for r in reasons(ledger, "cancelled")
    )


def test_admins_state_at_send_time_keeps_only_admins(
    ledger, test_sequences, sequences_dir, flags_path
) -> None:
    for n in range(6):
        add_user(ledger, f"a{n}", steps=1, segment="stalled", is_admin=n < 2)
    plan(ledger, test_sequences, flags_path)
    assert flags_set(flags_path, SEQUENCE_FLAG, "admins", None, "dev", True)[0] == 0
    with FakeSendGrid() as server:
        send(ledger, server, sequences_dir, flags_path)
    sent = ledger.execute(
        "select user_id from messaging.sends where status = 'sent' order by 1"
    ).fetchall()
    assert sent == [("a0",), ("a1",)]
    assert statuses(ledger) == {"sent": 2, "cancelled": 4}


@pytest.mark.parametrize("by", ["email", "user_id"])
def test_suppression_after_the_plan_cancels_at_claim(
    ledger, test_sequences, sequences_dir, flags_path, by: str
) -> None:
    for user in ("s1", "s2", "s3"):
        add_user(ledger, user, steps=1, segment="stalled", email=f"{user}@Example.com")
    plan(ledger, test_sequences, flags_path)
    key = ("S2@EXAMPLE.COM", None) if by == "email" else (None, "s2")
    ledger.execute(
        "insert into messaging.suppressions values (?, ?, 'unsubscribe', 'test', ?)",
        [key[0], key[1], T],
    )
    with FakeSendGrid() as server:
        report = send(ledger, server, sequences_dir, flags_path)
        accepted = server.accepted_send_ids()
    assert len(accepted) == 2
    assert statuses(ledger) == {"sent": 2, "cancelled": 1}
    assert reasons(ledger, "cancelled") == {"suppressed since the plan: unsubscribe"}
    assert report.cancelled == {"suppressed since the plan: unsubscribe": 1}
    assert_invariants(ledger)


def test_launchpad_override_holds_until_the_committed_flag_changes(
    ledger, test_sequences, sequences_dir, flags_path
) -> None:
    for n in range(4):
        add_user(ledger, f"o{n}", steps=1, segment="stalled", is_admin=n == 0)
    assert flags_set(flags_path, SEQUENCE_FLAG, "off", None, "dev", True)[0] == 0
    override = {SEQUENCE_FLAG: EnvSetting(state="on")}
    assert plan(ledger, test_sequences, flags_path, flag_overrides=override).total("planned") == 4
    # The committed file is what the plan saw: the one-run override is honoured.
    with FakeSendGrid() as server:
        send(ledger, server, sequences_dir, flags_path)
    assert statuses(ledger) == {"sent": 4}

    # A later change to the file is a newer decision than the override, and wins.
    for n in range(4, 8):
        add_user(ledger, f"o{n}", steps=1, segment="stalled", is_admin=n == 4)
    plan(ledger, test_sequences, flags_path, plan_id="p2", flag_overrides=override)
    assert flags_set(flags_path, SEQUENCE_FLAG, "admins", None, "dev", True)[0] == 0
    with FakeSendGrid() as server:
        send(ledger, server, sequences_dir, flags_path, run_id="r2")
    rows = dict(
        ledger.execute(
            "select user_id, status from messaging.sends where plan_id = 'p2'"
        ).fetchall()
    )
    assert rows == {"o4": "sent", "o5": "cancelled", "o6": "cancelled", "o7": "cancelled"}


def test_invalid_flags_mid_send_stop_the_run_and_keep_rows_planned(
    ledger, test_sequences, sequences_dir, flags_path
) -> None:
    add_stalled_users(ledger, 2 * BATCH_SIZE + 10)
    plan(ledger, test_sequences, flags_path)
    with FakeSendGrid() as server:
        # After the first request is received, an editor leaves the file broken.
        server.delay_next(0.2)
        original_respond = server.respond

        def respond_then_break(request):
            flags_path.write_text("flags:\n  messaging: [not, a, flag\n")
            return original_respond(request)

        server.respond = respond_then_break  # type: ignore[method-assign]
        with pytest.raises(SendHalted, match="flags changed during the send and are invalid"):
            send(ledger, server, sequences_dir, flags_path)
        assert len(server.requests) == 1
    assert statuses(ledger) == {"sent": BATCH_SIZE, "planned": BATCH_SIZE + 10}


def test_a_flag_removed_from_the_file_cancels_its_rows(
    ledger, test_sequences, sequences_dir, flags_path
) -> None:
    add_user(ledger, "r1", steps=1, segment="stalled")
    plan(ledger, test_sequences, flags_path)
    text = flags_path.read_text()
    start = text.index(f"  {SEQUENCE_FLAG}:")
    end = text.index("\n\n", start)
    flags_path.write_text(text[:start] + text[end + 2 :])
    with FakeSendGrid() as server:
        send(ledger, server, sequences_dir, flags_path)
        assert server.requests == []
    assert reasons(ledger, "cancelled") == {f"flag {SEQUENCE_FLAG} is no longer in flags.yaml"}
