"""The outbox sender: real RFC 5322 files, every header, idempotent and atomic writes."""

from __future__ import annotations

import email.policy
import os
import threading
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest

from pipelines.lib.email import (
    EmailSender,
    OutboxSender,
    OutgoingBatch,
    Recipient,
    SenderIdentity,
    TemplateRenderer,
)
from pipelines.lib.email import outbox as outbox_module

NOW = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)
IDENTITY = SenderIdentity(
    from_email="hello@acme.example",
    from_name="Acme Onboarding",
    unsubscribe_url="https://acme.example/unsubscribe",
    postal_address="Acme Inc., 1 Main Street, Springfield 12345",
    app_url="https://app.acme.example",
)


def person(send_id: str, first_name: str = "Ann", email: str | None = None) -> Recipient:
    return Recipient(
        send_id=send_id,
        user_id=f"u-{send_id}",
        email=email or f"{send_id}@example.com",
        name=f"{first_name} Lee",
        context={"first_name": first_name, "next_step_name": "Invite a teammate"},
    )


@pytest.fixture
def renderer(tmp_path: Path) -> TemplateRenderer:
    root = tmp_path / "templates"
    (root / "onboarding").mkdir(parents=True)
    (root / "onboarding/step_2.subject.j2").write_text("Next up, {{ user.first_name }}")
    (root / "onboarding/step_2.html.j2").write_text(
        "<p>Hi {{ user.first_name }}, next: {{ user.next_step_name }}</p>"
    )
    (root / "onboarding/step_2.txt.j2").write_text("Hi {{ user.first_name }}")
    return TemplateRenderer(root, IDENTITY)


@pytest.fixture
def outbox(tmp_path: Path) -> Path:
    return tmp_path / "outbox"


def make_sender(outbox: Path, renderer: TemplateRenderer, now: datetime = NOW) -> OutboxSender:
    return OutboxSender(outbox, renderer, IDENTITY, clock=lambda: now)


def batch(*recipients: Recipient, template: str = "onboarding/step_2") -> OutgoingBatch:
    return OutgoingBatch(template, "onboarding", "step_2", list(recipients))


def parse(path: Path) -> EmailMessage:
    with path.open("rb") as handle:
        message = BytesParser(policy=email.policy.default).parse(handle)
    assert isinstance(message, EmailMessage)
    return message


def eml_files(outbox: Path) -> list[Path]:
    return sorted(outbox.rglob("*.eml"))


def test_one_parseable_eml_per_recipient_with_every_header(
    outbox: Path, renderer: TemplateRenderer
) -> None:
    sender = make_sender(outbox, renderer)
    assert isinstance(sender, EmailSender)

    outcomes = sender.send(batch(person("s1", "<b>Ann & Co</b>"), person("s2", "Bob")))

    assert [o.status for o in outcomes] == ["sent", "sent"]
    assert eml_files(outbox) == [outbox / "2026-11-24/s1.eml", outbox / "2026-11-24/s2.eml"]
    message = parse(outbox / "2026-11-24/s1.eml")
    assert message["From"] == "Acme Onboarding <hello@acme.example>"
    assert message["To"].addresses[0].addr_spec == "s1@example.com"
    assert message["Subject"] == "Next up, <b>Ann & Co</b>"
    assert message["Date"].datetime == NOW
    assert message["Message-ID"] == "<s1@acme.example>" == outcomes[0].provider_message_id
    assert message["List-Unsubscribe"] == "<https://acme.example/unsubscribe?send_id=s1>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert (message["X-BIS-Send-Id"], message["X-BIS-Sequence"], message["X-BIS-Step"]) == (
        "s1",
        "onboarding",
        "step_2",
    )
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Hi <b>Ann & Co</b>" in text
    assert "Hi &lt;b&gt;Ann &amp; Co&lt;/b&gt;" in html
    assert "https://acme.example/unsubscribe?send_id=s1" in html
    assert IDENTITY.postal_address in text
    assert outcomes[0].attempts == 1
    assert outcomes[0].error is None


def test_resending_is_idempotent_even_on_a_later_day(
    outbox: Path, renderer: TemplateRenderer
) -> None:
    first = make_sender(outbox, renderer).send(batch(person("s1")))
    path = outbox / "2026-11-24/s1.eml"
    before = path.read_bytes()

    again = make_sender(outbox, renderer, NOW + timedelta(days=1)).send(
        batch(person("s1"), person("s3"))
    )

    assert again[0].status == "sent"
    assert again[0].provider_message_id == first[0].provider_message_id
    assert path.read_bytes() == before
    assert eml_files(outbox) == [path, outbox / "2026-11-25/s3.eml"]


def test_a_crash_mid_write_leaves_no_file_and_the_retry_writes_one(
    outbox: Path, renderer: TemplateRenderer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outbox_module.os, "fsync", crash)
    # A full disk is no message's fault: the batch stops (nothing `failed` for good) and the
    # unsent recipients go back to planned; the error names the file (one line for the CLI).
    with pytest.raises(outbox_module.OutboxUnwritable) as stopped:
        make_sender(outbox, renderer).send(batch(person("s1")))
    assert stopped.value.outcomes == []
    assert str(stopped.value) == (
        f"outbox: {outbox}/2026-11-24/s1.eml: No space left on device (ENOSPC); sending stopped"
    )
    assert list(outbox.rglob("*")) == [outbox / "2026-11-24"]  # no partial or temp file

    monkeypatch.undo()
    assert make_sender(outbox, renderer).send(batch(person("s1")))[0].status == "sent"
    assert parse(outbox / "2026-11-24/s1.eml")["X-BIS-Send-Id"] == "s1"


def test_concurrent_senders_write_one_file(outbox: Path, renderer: TemplateRenderer) -> None:
    recipients = [person(f"s{i}") for i in range(30)]
    results: list[list[str | None]] = []
    start = threading.Barrier(4)

    def run() -> None:
        start.wait()
        outcomes = make_sender(outbox, renderer).send(batch(*recipients))
        assert {o.status for o in outcomes} == {"sent"}
        results.append([o.provider_message_id for o in outcomes])

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 4 and all(r == results[0] for r in results)
    assert len(eml_files(outbox)) == 30
    assert not [p for p in outbox.rglob("*") if p.name.endswith(".tmp")]


def test_bad_recipients_fail_alone_with_a_reason(
    outbox: Path, renderer: TemplateRenderer, tmp_path: Path
) -> None:
    outcomes = make_sender(outbox, renderer).send(
        batch(person("ok"), person("bad-email", email="not an address"), person("../escape"))
    )

    assert [o.status for o in outcomes] == ["sent", "failed", "failed"]
    assert outcomes[1].error == "invalid email address"
    assert "send_id" in (outcomes[2].error or "")
    assert eml_files(outbox) == [outbox / "2026-11-24/ok.eml"]
    assert not (tmp_path / "escape.eml").exists()


def test_template_errors_fail_every_recipient_with_the_file_named(
    outbox: Path, renderer: TemplateRenderer
) -> None:
    outcomes = make_sender(outbox, renderer).send(batch(person("a"), template="missing/one"))

    assert outcomes[0].status == "failed"
    assert "missing/one.subject.j2" in (outcomes[0].error or "")
    assert outcomes[0].attempts == 0
    assert not outbox.exists() or eml_files(outbox) == []


def test_duplicate_send_ids_in_one_batch_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate send_id"):
        batch(person("a"), person("a"))


def test_files_use_crlf_line_endings(outbox: Path, renderer: TemplateRenderer) -> None:
    make_sender(outbox, renderer).send(batch(person("s1")))
    raw = (outbox / "2026-11-24/s1.eml").read_bytes()

    assert b"\r\n" in raw
    assert raw.count(b"\n") == raw.count(b"\r\n")
    assert os.path.getsize(outbox / "2026-11-24/s1.eml") == len(raw)
