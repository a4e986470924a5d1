"""The receiver's limits against the real server: uvicorn on 127.0.0.1 through `serve`,
with both request read deadlines at 1 s.

Deep nesting is a 400 with a clear message, never a 500 (Python's JSON parser raises
RecursionError past ~1000 levels).

Slow clients (slowloris):
Each client below stalls or trickles somewhere in a request; the server must close the
connection without answering (the request was never received), store nothing, and keep
serving everyone else meanwhile. Trickling clients send a byte every 0.2 s, which resets
uvicorn's keep-alive timer each time: only the receiver's own deadline can close them.
The only time assertion is a generous upper bound proving "closed, not hanging".
"""

from __future__ import annotations

import json
import select
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from pipelines.lib.webhook import EVENTS_PATH, serve
from pipelines.lib.webhook.protocol import DeadlineH11Protocol
from tests.lib.webhook.test_webhook_server import post, server
from tests.lib.webhook.webhook_helpers import SIGNER, final_files, read_lines, sample_events

DEADLINE = 1.0  # seconds, for headers and for the body
BOUND = 15.0  # far above DEADLINE: only proves the connection does not stay open
TRICKLE_PAUSE = 0.2


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    landing = tmp_path_factory.mktemp("slow") / "email_events"
    with server(landing, deadline=DEADLINE) as (url, _):
        yield url, landing


def address(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    assert parsed.hostname and parsed.port
    return parsed.hostname, parsed.port


def head(body_length: int | None = None, *, chunked: bool = False, signed: bool = True) -> bytes:
    """Request headers. Signed ones (fresh timestamp) pass the header checks, so the app
    goes on to read the body; unsigned ones are answered 401 before the body is read."""
    lines = [f"POST {EVENTS_PATH} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    if signed:
        lines += [f"{k}: {v}" for k, v in SIGNER.headers(b"[]").items() if k != "Content-Type"]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    elif body_length is not None:
        lines.append(f"Content-Length: {body_length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def closed_by_server(sock: socket.socket, trickle: bytes = b"") -> tuple[bool, bytes]:
    """Wait (sending `trickle` a byte at a time, if given) until the server closes the
    connection or BOUND passes. Returns (closed, any bytes the server sent)."""
    received = b""
    deadline = time.monotonic() + BOUND
    position = 0
    while time.monotonic() < deadline:
        if position < len(trickle):
            try:
                sock.sendall(trickle[position : position + 1])
            except (BrokenPipeError, ConnectionResetError):
                return True, received
            position += 1
            wait = TRICKLE_PAUSE
        else:
            wait = deadline - time.monotonic()
        readable, _, _ = select.select([sock], [], [], max(wait, 0))
        if readable:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return True, received
            if not chunk:
                return True, received
            received += chunk
    return False, received


def endless(text: bytes) -> bytes:
    return text * 1000  # longer than BOUND lasts at one byte per TRICKLE_PAUSE


REQUEST_LINE = f"POST {EVENTS_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()


def healthz_then(rest: bytes) -> bytes:
    return b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" + rest


def slow_clients() -> dict[str, tuple[bytes, bytes, int]]:
    """(what the client sends at once, what it then trickles forever or b"" to go silent,
    how many responses it gets before being cut off). Built when a test runs: the signed
    headers carry a timestamp that must be fresh then, not when the module was collected."""
    return {
        "connects and sends nothing": (b"", b"", 0),
        "half the request line": (b"POST /sendgrid/ev", b"", 0),
        "half the headers": (head(10)[:40], b"", 0),
        "headers without the final blank line": (head(10)[:-2], b"", 0),
        "header lines trickled a byte at a time": (REQUEST_LINE, endless(b"X-Slow: a\r\n"), 0),
        "half the body": (head(100) + b'[{"event": "deliv', b"", 0),
        "body trickled a byte at a time": (head(100_000), endless(b" "), 0),
        "chunked body, one chunk then silent": (head(chunked=True) + b"5\r\n[{}, \r\n", b"", 0),
        "chunked body trickled": (head(chunked=True), endless(b"1\r\n \r\n"), 0),
        # Answered 401 on its headers, then keeps the connection busy with the body.
        "unsigned, body trickled after the 401": (head(100_000, signed=False), endless(b" "), 1),
        # After a complete request and response on a kept-alive connection, the next request
        # is on the clock from its first byte.
        "kept alive, next headers trickled": (
            healthz_then(REQUEST_LINE),
            endless(b"X-Slow: a\r\n"),
            1,
        ),
        "kept alive, next body trickled": (healthz_then(head(100_000)), endless(b" "), 1),
    }


@pytest.mark.parametrize("client", list(slow_clients()))
def test_slow_client_is_disconnected_and_nothing_is_stored(
    receiver: tuple[str, Path], client: str
) -> None:
    start, trickle, answers = slow_clients()[client]
    url, landing = receiver
    before = final_files(landing)
    with socket.create_connection(address(url), timeout=BOUND) as sock:
        if start:
            sock.sendall(start)
        started = time.monotonic()
        closed, received = closed_by_server(sock, trickle)
        waited = time.monotonic() - started

    assert closed, f"still connected after {BOUND} s"
    assert waited < BOUND
    # The slow request itself gets no answer: it was never received.
    assert received.count(b"HTTP/1.1 ") == answers, received
    assert final_files(landing) == before


def test_others_are_served_while_slow_clients_hold_connections(
    receiver: tuple[str, Path],
) -> None:
    url, landing = receiver
    stalled = []
    for _ in range(20):
        sock = socket.create_connection(address(url), timeout=BOUND)
        sock.sendall(head(1000)[:30])
        stalled.append(sock)
    try:
        body = json.dumps(sample_events(2, prefix="meanwhile")).encode()
        with urllib.request.urlopen(url + "/healthz", timeout=BOUND) as response:
            assert response.status == 200
        assert post(url, body, SIGNER.headers(body)) == 200
        assert all(closed_by_server(sock)[0] for sock in stalled)
    finally:
        for sock in stalled:
            sock.close()
    stored = [read_lines(path) for path in final_files(landing)]
    assert [json.dumps(event) for event in sample_events(2, prefix="meanwhile")] in stored


def test_a_prompt_client_on_a_kept_alive_connection_is_not_cut(
    receiver: tuple[str, Path],
) -> None:
    # Requests that arrive in time are unaffected, also several on one connection, and the
    # app's own time (signature check, fsync) does not count against the client.
    url, landing = receiver
    with socket.create_connection(address(url), timeout=BOUND) as sock:
        for i in range(3):
            body = json.dumps(sample_events(1, prefix=f"kept-{i}")).encode()
            signed = SIGNER.headers(body)
            del signed["Content-Type"]  # head() has it
            extra = "".join(f"{k}: {v}\r\n" for k, v in signed.items()).encode()
            sock.sendall(head(len(body), signed=False)[:-2] + extra + b"\r\n" + body)
            response = b""
            while b"\r\n\r\n" not in response or not response.endswith(b"}"):
                chunk = sock.recv(65536)
                assert chunk, "server closed a prompt client's connection"
                response += chunk
            assert response.startswith(b"HTTP/1.1 200"), response
    stored = {line for path in final_files(landing) for line in read_lines(path)}
    assert {json.dumps(sample_events(1, prefix=f"kept-{i}")[0]) for i in range(3)} <= stored


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'[{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]",
        b"[" * 65 + b"]" * 65,
    ],
    ids=["100k nested arrays", "100k nested in an event", "65 levels"],
)
def test_deep_nesting_is_400_not_500(receiver: tuple[str, Path], body: bytes) -> None:
    url, landing = receiver
    before = final_files(landing)
    request = urllib.request.Request(
        url + EVENTS_PATH, data=body, headers=SIGNER.headers(body), method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=BOUND)
    assert refused.value.code == 400
    assert "nests deeper than 64 levels" in json.loads(refused.value.read())["error"]
    assert final_files(landing) == before


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf")])
@pytest.mark.parametrize("which", ["header_timeout", "body_timeout"])
def test_serve_refuses_a_deadline_that_never_fires_before_binding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, which: str, bad: float
) -> None:
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("bound anyway"))
    with pytest.raises(ValueError, match=which):
        serve("127.0.0.1", 1, env="dev", landing_dir=tmp_path, public_key=None, **{which: bad})


def test_serve_runs_the_deadline_protocol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    calls: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append(kw))
    serve("127.0.0.1", 1, env="dev", landing_dir=tmp_path, public_key=None, header_timeout=3)
    [options] = calls
    assert issubclass(options["http"], DeadlineH11Protocol)
    assert (options["http"].header_timeout, options["http"].body_timeout) == (3.0, 60.0)


def test_oversized_headers_are_refused_at_once(receiver: tuple[str, Path]) -> None:
    # Header bytes are bounded too, not only header time: h11 refuses over 16 KiB. (Today's
    # `serve`, on uvicorn's default httptools parser, took these and waited for the body.)
    url, _ = receiver
    with socket.create_connection(address(url), timeout=BOUND) as sock:
        sock.sendall(head(10)[:-2] + b"X-Big: " + b"a" * 20_000 + b"\r\n\r\n")
        closed, received = closed_by_server(sock)
    assert closed
    # The 400 may be lost to the reset the kernel sends for the unread rest of the headers.
    assert received == b"" or received.startswith(b"HTTP/1.1 400"), received
