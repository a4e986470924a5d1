"""The planner and the senders apply one email rule: what the planner plans is never refused
at send time, and what a sender would refuse (internationalised addresses included) ends
`suppressed` ("no valid email address") at plan time instead of `failed` after it."""

from __future__ import annotations

from pathlib import Path

from pipelines.lib.email import (
    OutboxSender,
    OutgoingBatch,
    Recipient,
    SendGridSender,
    TemplateRenderer,
)
from pipelines.lib.email.message import email_address_problem
from pipelines.lib.messaging.plan import plan_messages
from tests.lib.messaging.conftest import T, add_user
from tests.lib.messaging.test_send import IDENTITY
from tests.support.fake_sendgrid import FakeSendGrid

ADDRESSES = {
    "ascii": "ann@example.com",
    "plus_tag": "Ann.Lee+news@Example.COM",
    "punycode_domain": "ann@xn--bcher-kva.example",
    "punycode_tld": "ann@xn--80ak6aa92e.xn--p1ai",
    "idn_domain": "ann@bücher.example",
    "smtputf8_local": "josé@example.com",
    "all_unicode": "用户@例子.广告",
    "quoted_local": '"ann lee"@example.com',
    "trailing_dot": "ann@example.com.",
    "inner_space": "ann @example.com",
    "trailing_newline": "ann@example.com\n",
    "nul": "ann\x00@example.com",
    "too_long": "a" * 250 + "@x.io",
    "single_label": "ann@localhost",
}
SENDABLE = {"ascii", "plus_tag", "punycode_domain"}


def test_every_address_gets_the_same_verdict_at_plan_and_at_send_time(
    ledger, test_sequences, flags, sequences_dir: Path, tmp_path: Path, engine: str
) -> None:
    addresses = dict(ADDRESSES)
    if engine == "postgres":
        del addresses["nul"]  # PostgreSQL text cannot hold U+0000: it never reaches the marts
    for index, address in enumerate(addresses.values()):
        add_user(ledger, f"u{index:02d}", steps=1, segment="stalled", email=address)
    plan_messages(ledger, sequences=test_sequences, flags=flags, env="dev", as_of=T, plan_id="p1")
    rows = ledger.execute(
        "select send_id, user_id, email, status, status_reason, template, sequence_id, step_id"
        " from messaging.sends order by user_id"
    ).fetchall()
    by_email = {row[2]: row for row in rows}
    assert set(by_email) == set(addresses.values())  # every user decided, none lost

    for key, address in addresses.items():
        _, _, _, status, reason, *_ = by_email[address]
        sendable = email_address_problem(address) is None
        assert sendable == (key in SENDABLE), key
        if sendable:
            assert status == "planned", (key, status, reason)
        else:
            assert (status, reason) == ("suppressed", "suppressed: no valid email address"), key

    # Everything planned goes out through both senders: nothing planned ends `failed`.
    planned = [row for row in rows if row[3] == "planned"]
    [(template, sequence_id, step_id)] = {(r[5], r[6], r[7]) for r in planned}
    batch = OutgoingBatch(
        template,
        sequence_id,
        step_id,
        [
            Recipient(send_id, user_id, email, "Ann", {"first_name": "Ann", "steps_completed": 1})
            for send_id, user_id, email, *_ in planned
        ],
    )
    renderer = TemplateRenderer(sequences_dir / "templates", IDENTITY)
    outbox = OutboxSender(tmp_path / "outbox", renderer, IDENTITY, clock=lambda: T)
    assert [(o.status, o.error) for o in outbox.send(batch)] == [("sent", None)] * len(planned)
    with FakeSendGrid() as server:
        sender = SendGridSender(
            server.api_key, server.url, renderer, IDENTITY, sandbox=False, base_delay=0.01
        )
        outcomes = sender.send(batch)
        accepted = sorted(
            to["email"]
            for request in server.accepted
            for personalization in request.body["personalizations"]
            for to in personalization["to"]
        )
    assert [(o.status, o.error) for o in outcomes] == [("sent", None)] * len(planned)
    assert accepted == sorted(ADDRESSES[key] for key in SENDABLE)
