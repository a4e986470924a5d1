"""Closing the loop: webhook events → raw.email_events → suppressions and confirmed sends,
and the next plan honours them."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from pipelines.lib.email_events import apply_email_events, load_email_events
from pipelines.lib.ingest.checks import unbalanced_files
from pipelines.lib.messaging.plan import plan_messages
from tests.lib.messaging.conftest import T, add_user


def event(sg_event_id: str, kind: str, email: str, send_id: str | None = None, **extra) -> dict:
    record = {
        "sg_event_id": sg_event_id,
        "event": kind,
        "email": email,
        "timestamp": int((T + timedelta(minutes=5)).timestamp()),
        **extra,
    }
    if send_id:
        record["send_id"] = send_id  # SendGrid flattens custom_args into the event
    return record


def write_events(folder: Path, name: str, events: list) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("".join((e if isinstance(e, str) else json.dumps(e)) + "\n" for e in events))
    return path


def test_events_suppress_confirm_and_the_next_plan_honours_them(
    ledger, test_sequences, flags, tmp_path: Path
) -> None:
    for user in ("u1", "u2", "u3"):
        add_user(ledger, user, steps=1, segment="stalled")
    plan_messages(ledger, sequences=test_sequences, flags=flags, env="dev", as_of=T, plan_id="p1")
    ids = dict(ledger.execute("select user_id, send_id from messaging.sends").fetchall())
    ledger.execute(
        "update messaging.sends set status = 'sent', sent_at = ? where user_id <> 'u3'", [T]
    )
    ledger.execute("update messaging.sends set status = 'unknown' where user_id = 'u3'")
    folder = tmp_path / "email_events"
    batch = [
        event("e1", "unsubscribe", "u1@example.com", ids["u1"]),
        event("e2", "bounce", "U2@Example.com", ids["u2"], reason="550 mailbox unavailable"),
        event("e3", "delivered", "u3@example.com", ids["u3"]),
        event("e4", "open", "u1@example.com", ids["u1"]),
    ]
    write_events(folder, "a.jsonl", batch)
    write_events(folder, "b.jsonl", [*batch[:2], "not json", {"event": "delivered"}])

    report = load_email_events(ledger, folder)
    applied = apply_email_events(ledger)
    again = apply_email_events(ledger)

    assert (report.files, report.loaded, report.duplicate) == (2, 4, 2)
    assert dict(report.rejections) == {"invalid_json": 1, "missing_sg_event_id": 1}
    assert unbalanced_files(ledger) == []
    assert (applied.suppressions_added, applied.confirmed_unknown) == (2, 1)
    assert (again.suppressions_added, again.confirmed_unknown) == (0, 0)
    suppressions = dict(
        ledger.execute("select email, reason from messaging.suppressions").fetchall()
    )
    assert suppressions == {"u1@example.com": "unsubscribe", "u2@example.com": "bounce"}
    status, reason = ledger.execute(
        "select status, status_reason from messaging.sends where user_id = 'u3'"
    ).fetchone()
    assert status == "sent" and "delivered" in reason

    # Two days later nudge_a's second step is due for all three: suppressed for u1 and u2.
    plan_messages(
        ledger,
        sequences=test_sequences,
        flags=flags,
        env="dev",
        as_of=T + timedelta(days=2),
        plan_id="p2",
    )
    decided = dict(
        ledger.execute(
            "select user_id, status from messaging.sends where step_id = 'second'"
        ).fetchall()
    )
    assert decided == {"u1": "suppressed", "u2": "suppressed", "u3": "planned"}
