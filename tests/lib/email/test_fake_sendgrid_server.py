"""The fake SendGrid itself: it must refuse what SendGrid refuses, or sender tests prove
nothing."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.support.fake_sendgrid import FakeSendGrid

KEY = "SG.test-key.abcdef"
PLAIN = {"type": "text/plain", "value": "x"}
TO = [{"email": "a@x.io"}]


def mail(count: int = 1, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "personalizations": [
            {"to": [{"email": f"u{i}@example.com"}], "custom_args": {"send_id": f"s{i}"}}
            for i in range(count)
        ],
        "from": {"email": "hello@acme.example"},
        "subject": "Hi",
        "content": [{"type": "text/plain", "value": "x"}, {"type": "text/html", "value": "<p>x"}],
    }
    body.update(overrides)
    return body


def post(
    server: FakeSendGrid, body: Any, key: str | None = KEY, path: str = "/v3/mail/send"
) -> tuple[int, dict[str, str], Any]:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(
        server.url + path, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            raw = response.read()
            return response.status, dict(response.headers), json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, dict(error.headers), json.loads(raw) if raw else None


@pytest.fixture
def server() -> Any:
    with FakeSendGrid(api_key=KEY) as fake:
        yield fake


def test_accepts_a_valid_request_with_a_message_id(server: FakeSendGrid) -> None:
    status, headers, payload = post(server, mail(2))

    assert status == 202 and payload is None
    assert len(headers["X-Message-Id"]) >= 16
    assert server.accepted_send_ids() == ["s0", "s1"]


def test_sandbox_mode_answers_200(server: FakeSendGrid) -> None:
    status, _, _ = post(server, mail(mail_settings={"sandbox_mode": {"enable": True}}))

    assert status == 200


@pytest.mark.parametrize("key", [None, "SG.other", ""])
def test_refuses_a_missing_or_wrong_key(server: FakeSendGrid, key: str | None) -> None:
    status, _, payload = post(server, mail(), key=key)

    assert status == 401
    assert "authorization" in payload["errors"][0]["message"]
    assert server.accepted == []


def test_unknown_paths_are_404(server: FakeSendGrid) -> None:
    assert post(server, mail(), path="/v3/mail/batch")[0] == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (mail(1001), "personalizations"),
        (mail(personalizations=[]), "personalizations"),
        (mail(personalizations=[{"to": [{"email": "a@x.io"}, {"email": "A@x.io"}]}]), "to"),
        (mail(personalizations=[{"to": [{"email": "not-an-address"}]}]), "to"),
        (mail(**{"from": {}}), "from"),
        (mail(content=[]), "content"),
        (mail(content=[{"type": "text/html", "value": "<p>"}, PLAIN]), "content"),
        (mail(subject=""), "subject"),
        (mail(personalizations=[{"to": TO, "substitutions": {"%a%": 1}}]), "substitutions"),
        (mail(categories=[str(i) for i in range(11)]), "categories"),
    ],
)
def test_refuses_payloads_sendgrid_refuses(server: FakeSendGrid, body: Any, field: str) -> None:
    status, _, payload = post(server, body)

    assert status == 400
    assert any(field in (e["field"] or "") for e in payload["errors"])
    assert server.accepted == []


def test_scripted_faults_are_consumed_in_order_and_by_predicate(server: FakeSendGrid) -> None:
    bad = {"errors": [{"message": "bad"}]}
    server.fail_next(status=400, body=bad, when=lambda r: "s1" in r.send_ids)
    server.fail_next(status=429, headers={"X-RateLimit-Reset": "123"})

    first = post(server, mail(1))  # s0 only: the 400 does not match, the 429 does
    second = post(server, mail(1))
    third = post(server, mail(2))

    assert (first[0], first[1]["X-RateLimit-Reset"]) == (429, "123")
    assert second[0] == 202
    assert third[0] == 400 and third[2] == {"errors": [{"message": "bad"}]}
    assert len(server.requests) == 3
    assert server.accepted_send_ids() == ["s0"]


def test_drop_closes_without_an_answer(server: FakeSendGrid) -> None:
    server.drop_next()

    with pytest.raises(http.client.RemoteDisconnected):
        post(server, mail())
    assert len(server.requests) == 1 and server.accepted == []


def test_stop_is_prompt_even_with_a_delayed_answer_pending() -> None:
    server = FakeSendGrid(api_key=KEY).start()
    port = server.port
    server.delay_next(30)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            post(server, mail())
        except (OSError, http.client.HTTPException) as error:
            errors.append(error)

    client = threading.Thread(target=call)
    client.start()
    deadline = time.monotonic() + 5
    while not server.requests and time.monotonic() < deadline:
        time.sleep(0.01)

    started = time.monotonic()
    server.stop()
    client.join(timeout=5)

    assert time.monotonic() - started < 2
    assert not client.is_alive()
    assert len(errors) == 1  # the client saw the connection close, not an answer
    assert server.accepted == []  # interrupted, so not accepted
    assert not [t for t in threading.enumerate() if "process_request" in t.name]
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
