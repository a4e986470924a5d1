"""End to end: send through a local SendGrid → signed webhook events (unsubscribe,
bounce, delivered) → ingest → the next plan suppresses, and `unknown` is confirmed. Plus the
rollback drill: a flag turned off stops that sequence at the next plan."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

from pipelines.lib.email import SendGridSender, TemplateRenderer
from pipelines.lib.email_events import apply_email_events, load_email_events
from pipelines.lib.flags import load_flags
from pipelines.lib.messaging.gate import SendGate
from pipelines.lib.messaging.plan import plan_messages
from pipelines.lib.messaging.send import send_planned
from pipelines.lib.ops import flags_set
from pipelines.lib.settings import FLAGS_FILE
from pipelines.lib.webhook import EVENTS_PATH, create_app
from tests.lib.messaging.conftest import T, add_user
from tests.lib.messaging.test_send import IDENTITY
from tests.lib.webhook.webhook_helpers import Signer, call
from tests.support.fake_sendgrid import FakeSendGrid


def test_webhook_events_close_the_loop(
    ledger, test_sequences, flags, sequences_dir, tmp_path: Path
) -> None:
    for user in ("u1", "u2", "u3"):
        add_user(ledger, user, steps=1, segment="stalled")
    plan_messages(ledger, sequences=test_sequences, flags=flags, env="dev", as_of=T, plan_id="p1")
    with FakeSendGrid() as server:
        server.drop_next(accept=True)  # SendGrid took the batch; the answer was lost
        sender = SendGridSender(
            api_key=server.api_key,
            host=server.url,
            renderer=TemplateRenderer(sequences_dir / "templates", IDENTITY),
            identity=IDENTITY,
            sandbox=False,
            timeout=2.0,
        )
        report = send_planned(
            ledger,
            sender=sender,
            run_id="r1",
            max_sends_per_run=10,
            gate=SendGate(FLAGS_FILE, "dev"),
            clock=T,
        )
        accepted = {
            p["to"][0]["email"]: p["custom_args"]["send_id"]
            for request in server.accepted
            for p in request.body["personalizations"]
        }
    assert report.statuses == {"unknown": 3}

    landing = tmp_path / "landing" / "email_events"
    signer = Signer.generate()
    app = create_app(landing_dir=landing, public_key=signer.public_key)
    stamp = int((T + timedelta(minutes=3)).timestamp())
    events = [
        {
            "sg_event_id": f"ev-{kind}",
            "event": kind,
            "email": email,
            "timestamp": stamp,
            "send_id": accepted[email],
        }
        for kind, email in (
            ("unsubscribe", "u1@example.com"),
            ("bounce", "u2@example.com"),
            ("delivered", "u3@example.com"),
        )
    ]
    body = json.dumps(events).encode()
    for _ in range(2):  # SendGrid retries: the same delivery twice
        response = call(app, "POST", EVENTS_PATH, headers=signer.headers(body), body=body)
        assert response.status == 200
    forged = call(
        app,
        "POST",
        EVENTS_PATH,
        headers={**signer.headers(body)},
        body=body.replace(b"u3@", b"u9@"),
    )
    assert forged.status == 403

    loaded = load_email_events(ledger, landing)
    applied = apply_email_events(ledger)

    # The retried delivery has the same content: skipped by hash. One row per event.
    assert loaded.loaded == 3
    assert ledger.execute("select count(*) from raw.email_events").fetchone()[0] == 3
    assert (applied.suppressions_added, applied.confirmed_unknown) == (2, 1)
    assert (
        ledger.execute("select status from messaging.sends where user_id = 'u3'").fetchone()[0]
        == "sent"
    )
    plan_messages(
        ledger,
        sequences=test_sequences,
        flags=flags,
        env="dev",
        as_of=T + timedelta(days=2),
        plan_id="p2",
    )
    second = dict(
        ledger.execute(
            "select user_id, status from messaging.sends where step_id = 'second'"
        ).fetchall()
    )
    assert second == {"u1": "suppressed", "u2": "suppressed", "u3": "planned"}


def test_rollback_drill_flag_off_stops_the_sequence(ledger, test_sequences, tmp_path: Path) -> None:
    flags_path = tmp_path / "flags.yaml"
    shutil.copy(FLAGS_FILE, flags_path)
    for i in range(5):
        add_user(ledger, f"u{i}", steps=1, segment="stalled")
    plan_messages(
        ledger,
        sequences=test_sequences,
        flags=load_flags(flags_path),
        env="dev",
        as_of=T,
        plan_id="p1",
    )
    assert (
        ledger.execute("select count(*) from messaging.sends where status = 'planned'").fetchone()[
            0
        ]
        == 5
    )

    refused, _ = flags_set(flags_path, "nurture_stalled", "off", None, "dev")
    code, lines = flags_set(flags_path, "nurture_stalled", "off", None, "dev", force=True)

    assert refused == 2  # narrowing a live flag needs --force
    assert code == 0 and "on -> off" in lines[0].replace("→", "->")
    result = plan_messages(
        ledger,
        sequences=test_sequences,
        flags=load_flags(flags_path),
        env="dev",
        as_of=T + timedelta(minutes=5),
        plan_id="p2",
    )
    # Nothing for the rolled-back sequence; the same users may get the next one in line.
    assert result.decisions.get(("nudge_a", "planned"), 0) == 0
    assert dict(result.not_enrolled) == {("nudge_a", "nurture_stalled off"): 5}
    cancelled = ledger.execute(
        "select count(*) from messaging.sends"
        " where status = 'cancelled' and sequence_id = 'nudge_a'"
    ).fetchone()[0]
    assert cancelled == 5


def test_events_arriving_while_a_run_locks_the_warehouse_are_not_lost(tmp_path: Path) -> None:
    import subprocess
    import sys

    import duckdb

    from pipelines.lib.warehouse import open_warehouse

    warehouse = tmp_path / "warehouse.duckdb"
    with open_warehouse(warehouse):
        pass  # migrations applied
    holder = subprocess.Popen(  # another process holds DuckDB's write lock, like a run
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]);"
            " print('locked', flush=True); time.sleep(120)",
            str(warehouse),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        try:
            duckdb.connect(str(warehouse)).close()
            raise AssertionError("the warehouse should be locked by the other process")
        except duckdb.IOException:
            pass
        landing = tmp_path / "landing"
        signer = Signer.generate()
        app = create_app(landing_dir=landing, public_key=signer.public_key)
        body = json.dumps(
            [
                {
                    "sg_event_id": "ev-locked",
                    "event": "unsubscribe",
                    "email": "u1@example.com",
                    "timestamp": int(T.timestamp()),
                }
            ]
        ).encode()
        response = call(app, "POST", EVENTS_PATH, headers=signer.headers(body), body=body)
        assert response.status == 200  # acknowledged while the warehouse is busy
    finally:
        holder.kill()
        holder.wait(timeout=30)
    with open_warehouse(warehouse) as con:
        assert load_email_events(con, landing).loaded == 1
        assert apply_email_events(con).suppressions_added == 1
