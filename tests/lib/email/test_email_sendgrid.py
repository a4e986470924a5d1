"""SendGridSender against the local fake SendGrid: batching, payload, faults, secrecy."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines.lib.email import (
    EmailSender,
    OutgoingBatch,
    ProviderAccountError,
    Recipient,
    RenderedEmail,
    SenderIdentity,
    SendGridSender,
    TemplateRenderer,
)
from pipelines.lib.email.render import apply_substitutions
from tests.support.fake_sendgrid import FakeSendGrid, RecordedRequest

API_KEY = "SG.SeCrEtKeY-0123456789.abcdefghijklmnopqrstuvwxyz_SECRET"
IDENTITY = SenderIdentity(
    from_email="hello@acme.example",
    from_name="Acme Onboarding",
    unsubscribe_url="https://acme.example/unsubscribe",
    postal_address="Acme Inc., 1 Main Street, Springfield 12345",
    app_url="https://app.acme.example",
)
NASTY = "<b>Ann & Co</b>"


@pytest.fixture
def server() -> Iterator[FakeSendGrid]:
    with FakeSendGrid(api_key=API_KEY) as fake:
        yield fake


@pytest.fixture
def renderer(tmp_path: Path) -> TemplateRenderer:
    root = tmp_path / "templates"
    (root / "nurture").mkdir(parents=True)
    (root / "nurture/stalled.subject.j2").write_text("{{ user.first_name }}, one step left")
    (root / "nurture/stalled.html.j2").write_text(
        "<html><body><p>Hi {{ user.first_name }},</p>"
        '{% if user.steps_completed >= 3 %}<p class="late">Almost there!</p>{% endif %}'
        '<a href="{{ app_url }}">{{ user.next_step_name }}</a></body></html>'
    )
    (root / "nurture/stalled.txt.j2").write_text("Hi {{ user.first_name }}")
    return TemplateRenderer(root, IDENTITY)


def person(i: int, first_name: str | None = None, **extra: Any) -> Recipient:
    context = {"first_name": first_name or f"User{i}", "steps_completed": 1}
    context["next_step_name"] = "Invite a teammate"
    context.update(extra)
    return Recipient(f"s-{i}", f"u-{i}", f"user{i}@example.com", f"User {i}", context)


def batch(recipients: list[Recipient]) -> OutgoingBatch:
    return OutgoingBatch("nurture/stalled", "stalled_onboarding", "nudge_1", recipients)


def make_sender(
    server: FakeSendGrid, renderer: TemplateRenderer, *, sleeps: list[float] | None = None,
    **options: Any,
) -> SendGridSender:  # fmt: skip
    options.setdefault("sandbox", False)
    if sleeps is not None:
        options["sleep"] = sleeps.append
    return SendGridSender(API_KEY, server.url, renderer, IDENTITY, **options)


def delivered(request: RecordedRequest) -> dict[str, RenderedEmail]:
    """What SendGrid would send to each send_id: substitutions applied to the shared body."""
    body = request.body
    html = next(c["value"] for c in body["content"] if c["type"] == "text/html")
    text = next(c["value"] for c in body["content"] if c["type"] == "text/plain")
    result = {}
    for item in body["personalizations"]:
        values = item.get("substitutions", {})
        result[item["custom_args"]["send_id"]] = RenderedEmail(
            subject=apply_substitutions(body["subject"], values),
            html=apply_substitutions(html, values),
            text=apply_substitutions(text, values),
        )
    return result


def test_2500_recipients_of_one_template_take_exactly_three_requests(
    server: FakeSendGrid, renderer: TemplateRenderer
) -> None:
    recipients = [person(i) for i in range(2500)]
    sender = make_sender(server, renderer)
    assert isinstance(sender, EmailSender)

    outcomes = sender.send(batch(recipients))

    assert [len(r.body["personalizations"]) for r in server.requests] == [1000, 1000, 500]
    ids = server.accepted_send_ids()
    assert len(ids) == len(set(ids)) == 2500
    assert [o.send_id for o in outcomes] == [r.send_id for r in recipients]
    assert {o.status for o in outcomes} == {"sent"}
    assert {o.attempts for o in outcomes} == {1}
    message_ids = {o.provider_message_id for o in outcomes}
    assert len(message_ids) == 3 and None not in message_ids  # one X-Message-Id per request


def test_payload_has_everything_sendgrid_and_the_inbox_need(
    server: FakeSendGrid, renderer: TemplateRenderer
) -> None:
    sender = make_sender(server, renderer, sandbox=True, asm_group_id=42)

    outcomes = sender.send(batch([person(1, NASTY), person(2)]))

    assert [o.status for o in outcomes] == ["sent", "sent"]
    (request,) = server.requests
    assert request.header("Authorization") == f"Bearer {API_KEY}"
    body = request.body
    assert body["mail_settings"] == {"sandbox_mode": {"enable": True}}
    assert body["asm"] == {"group_id": 42}
    assert body["categories"] == ["stalled_onboarding", "nudge_1"]
    assert body["from"] == {"email": "hello@acme.example", "name": "Acme Onboarding"}
    assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert body["subject"] == "%user.first_name%, one step left"
    first = body["personalizations"][0]
    assert first["to"] == [{"email": "user1@example.com", "name": "User 1"}]
    assert first["custom_args"] == {"send_id": "s-1"}
    assert first["headers"]["List-Unsubscribe"] == (
        "<https://acme.example/unsubscribe?send_id=s-1>"
    )
    assert first["substitutions"]["%user.first_name%"] == NASTY
    assert first["substitutions"]["%user.first_name_html%"] == "&lt;b&gt;Ann &amp; Co&lt;/b&gt;"


def test_what_each_user_receives_equals_the_personal_render(
    server: FakeSendGrid, renderer: TemplateRenderer
) -> None:
    recipients = [person(1, NASTY), person(2, 'Zoë "Z" O\'Neil'), person(3, "50% off")]

    make_sender(server, renderer).send(batch(recipients))

    (request,) = server.requests
    received = delivered(request)
    for recipient in recipients:
        assert received[recipient.send_id] == renderer.render("nurture/stalled", recipient)
    assert "Hi &lt;b&gt;Ann &amp; Co&lt;/b&gt;," in received["s-1"].html
    assert "&amp;lt;" not in received["s-1"].html  # never escaped twice
    assert received["s-1"].text.startswith(f"Hi {NASTY}")


def test_different_template_branches_go_in_separate_requests(
    server: FakeSendGrid, renderer: TemplateRenderer
) -> None:
    recipients = [person(i, steps_completed=1 if i % 2 else 3) for i in range(10)]

    make_sender(server, renderer).send(batch(recipients))

    assert sorted(len(r.body["personalizations"]) for r in server.requests) == [5, 5]
    for request in server.requests:
        for send_id, email in delivered(request).items():
            i = int(send_id.split("-")[1])
            assert email == renderer.render("nurture/stalled", recipients[i])


def test_a_repeated_address_goes_to_another_request(
    server: FakeSendGrid, renderer: TemplateRenderer
) -> None:
    twin = Recipient("s-twin", "u-1", "USER1@example.com", None, person(1).context)

    outcomes = make_sender(server, renderer).send(batch([person(1), twin, person(2)]))

    assert [o.status for o in outcomes] == ["sent"] * 3
    assert [len(r.body["personalizations"]) for r in server.requests] == [2, 1]


def test_an_invalid_address_fails_alone_before_any_request(
    server: FakeSendGrid, renderer: TemplateRenderer
) -> None:
    bad = Recipient("s-bad", "u-bad", "nobody@", None, person(0).context)

    outcomes = make_sender(server, renderer).send(batch([person(1), bad]))

    assert [(o.status, o.attempts) for o in outcomes] == [("sent", 1), ("failed", 0)]
    assert outcomes[1].error == "invalid email address"
    assert server.accepted_send_ids() == ["s-1"]


def test_a_template_error_fails_the_batch_without_calling_sendgrid(
    server: FakeSendGrid, renderer: TemplateRenderer
) -> None:
    outcomes = make_sender(server, renderer).send(
        OutgoingBatch("nurture/missing", "s", "x", [person(1)])
    )

    assert (outcomes[0].status, outcomes[0].attempts) == ("failed", 0)
    assert "nurture/missing.subject.j2" in (outcomes[0].error or "")
    assert server.requests == []


def test_rate_limit_waits_for_the_reset_then_sends(
    server: FakeSendGrid, renderer: TemplateRenderer
) -> None:
    reset = int(time.time()) + 3
    server.fail_next(status=429, headers={"X-RateLimit-Reset": str(reset)})
    sleeps: list[float] = []

    outcomes = make_sender(server, renderer, sleeps=sleeps).send(batch([person(1)]))

    assert (outcomes[0].status, outcomes[0].attempts) == ("sent", 2)
    assert len(sleeps) == 1 and 1.9 <= sleeps[0] <= 3.0
    assert server.accepted_send_ids() == ["s-1"]


def test_rate_limit_wait_is_real_with_the_default_sleep(
    server: FakeSendGrid, renderer: TemplateRenderer
) -> None:
    reset = int(time.time()) + 1
    server.fail_next(status=429, headers={"X-RateLimit-Reset": str(reset)})

    outcomes = make_sender(server, renderer).send(batch([person(1)]))

    assert (outcomes[0].status, outcomes[0].attempts) == ("sent", 2)
    first, second = server.requests
    assert second.received_at >= reset - 0.05  # did not come back before the window reset
    assert second.received_at - first.received_at <= 1.5


def test_a_server_error_is_retried_once_with_backoff(
    server: FakeSendGrid, renderer: TemplateRenderer
) -> None:
    server.fail_next(status=500)
    sleeps: list[float] = []

    outcomes = make_sender(server, renderer, sleeps=sleeps, base_delay=0.5).send(
        batch([person(1), person(2)])
    )

    assert [(o.status, o.attempts) for o in outcomes] == [("sent", 2), ("sent", 2)]
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= 0.5
    assert server.accepted_send_ids() == ["s-1", "s-2"]


def test_persistent_server_errors_fail_after_bounded_attempts(
    server: FakeSendGrid, renderer: TemplateRenderer
) -> None:
    server.fail_next(status=503, times=3)
    sleeps: list[float] = []

    outcomes = make_sender(server, renderer, sleeps=sleeps, max_attempts=3).send(batch([person(1)]))

    assert (outcomes[0].status, outcomes[0].attempts) == ("failed", 3)
    assert (outcomes[0].error or "").startswith("gave up after 3 attempts: HTTP 503")
    assert len(server.requests) == 3 and len(sleeps) == 2
    assert server.accepted_send_ids() == []


def test_a_bad_request_fails_that_request_with_sendgrids_reason(
    server: FakeSendGrid, renderer: TemplateRenderer
) -> None:
    server.fail_next(status=400, body={"errors": [{"message": "bad", "field": "content"}]})

    outcomes = make_sender(server, renderer, sleeps=[]).send(batch([person(1), person(2)]))

    assert [(o.status, o.attempts) for o in outcomes] == [("failed", 1), ("failed", 1)]
    assert outcomes[0].error == "HTTP 400 Bad Request: bad (field content)"
    assert len(server.requests) == 1  # permanent: not retried


def test_a_wrong_key_is_refused_and_not_retried(
    server: FakeSendGrid, renderer: TemplateRenderer
) -> None:
    sender = SendGridSender(
        "SG.wrong-key-000000.zzzzzzzzzzzz", server.url, renderer, IDENTITY, sandbox=False
    )

    with pytest.raises(ProviderAccountError) as refused:
        sender.send(batch([person(1)]))

    # A wrong key refuses the account, not the message: the send loop stops and keeps the
    # message sendable instead of failing it.
    assert "HTTP 401" in str(refused.value) and refused.value.outcomes == []
    assert "wrong-key" not in str(refused.value)
    assert len(server.requests) == 1
    assert server.requests[0].header("Authorization") == "Bearer SG.wrong-key-000000.zzzzzzzzzzzz"


def test_a_slow_answer_beyond_the_timeout_is_unknown_and_not_resent(
    server: FakeSendGrid, renderer: TemplateRenderer
) -> None:
    server.delay_next(0.8)

    outcome = make_sender(server, renderer, timeout=0.2, sleeps=[]).send(batch([person(1)]))[0]

    assert (outcome.status, outcome.attempts) == ("unknown", 1)
    assert "may have accepted" in (outcome.error or "")
    assert server.wait_for_requests(1, timeout=5)
    assert len(server.requests) == 1
    assert server.accepted_send_ids() == ["s-1"]  # it did go out: resending would duplicate


def test_a_dropped_connection_is_unknown_and_not_resent(
    server: FakeSendGrid, renderer: TemplateRenderer
) -> None:
    server.drop_next(accept=True)

    outcome = make_sender(server, renderer, sleeps=[]).send(batch([person(1)]))[0]

    assert (outcome.status, outcome.attempts) == ("unknown", 1)
    assert "without a response" in (outcome.error or "")
    assert len(server.requests) == 1
    assert server.accepted_send_ids() == ["s-1"]


def test_an_unreachable_server_is_retried_then_failed(renderer: TemplateRenderer) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sleeps: list[float] = []
    sender = SendGridSender(
        API_KEY, f"http://127.0.0.1:{port}", renderer, IDENTITY, sandbox=False,
        max_attempts=3, sleep=sleeps.append,
    )  # fmt: skip

    outcome = sender.send(batch([person(1)]))[0]

    assert (outcome.status, outcome.attempts) == ("failed", 3)
    assert "could not reach the provider" in (outcome.error or "")
    assert len(sleeps) == 2


def test_mixed_faults_end_every_message_sent_once_or_failed_with_a_reason(
    server: FakeSendGrid, renderer: TemplateRenderer
) -> None:
    server.fail_next(status=429, headers={"X-RateLimit-Reset": str(int(time.time()) + 2)})
    server.fail_next(status=500)
    server.fail_next(
        status=400,
        body={"errors": [{"message": "bad"}]},
        when=lambda r: "s-2100" in r.send_ids,
    )
    recipients = [person(i) for i in range(2500)]

    outcomes = make_sender(server, renderer, sleeps=[]).send(batch(recipients))

    by_status: dict[str, list[int]] = {}
    for outcome in outcomes:
        by_status.setdefault(outcome.status, []).append(int(outcome.send_id.split("-")[1]))
    assert by_status["sent"] == list(range(2000))
    assert by_status["failed"] == list(range(2000, 2500))
    assert {o.error for o in outcomes if o.status == "failed"} == {"HTTP 400 Bad Request: bad"}
    assert {o.attempts for o in outcomes[:1000]} == {3}
    ids = server.accepted_send_ids()
    assert sorted(ids) == sorted(f"s-{i}" for i in range(2000))
    assert server.pending_faults() == 0


def test_the_api_key_never_leaks(
    server: FakeSendGrid, renderer: TemplateRenderer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sender = make_sender(server, renderer, sleeps=[], timeout=0.2, max_attempts=2)
    server.fail_next(status=400, body={"errors": [{"message": f"echo Bearer {API_KEY}"}]})
    server.fail_next(status=500, body={"errors": [{"message": f"key {API_KEY}"}]}, times=2)
    server.drop_next()
    server.delay_next(0.6)

    outcomes = [sender.send(batch([person(i)]))[0] for i in range(5)]
    with pytest.raises(ValueError) as raised:
        SendGridSender(API_KEY, "ftp://nowhere", renderer, IDENTITY, sandbox=False)

    assert [o.status for o in outcomes] == ["failed", "failed", "unknown", "unknown", "sent"]
    assert any("HEADERS" in r.getMessage() for r in caplog.records)  # the library did log
    texts = [o.error or "" for o in outcomes] + [r.getMessage() for r in caplog.records]
    texts += [caplog.text, str(raised.value), repr(sender)]
    secret = API_KEY.split(".", 1)[1]
    assert not [t for t in texts if secret in t or "SeCrEtKeY" in t]


def test_an_empty_key_is_refused_up_front(
    renderer: TemplateRenderer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", API_KEY)  # the library would fall back to it

    with pytest.raises(ValueError, match="SENDGRID_API_KEY") as raised:
        SendGridSender("", "http://127.0.0.1:9", renderer, IDENTITY, sandbox=True)
    assert API_KEY not in str(raised.value)
