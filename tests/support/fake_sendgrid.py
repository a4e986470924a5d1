"""A local SendGrid v3 `POST /v3/mail/send` server for tests, with fault injection.

    with FakeSendGrid(api_key="SG.test-key") as server:
        sender = SendGridSender(server.api_key, server.url, ...)
        server.fail_next(status=429, headers={"X-RateLimit-Reset": str(int(time.time()) + 1)})
        server.fail_next(status=500)
        server.delay_next(2.0)            # answer late (beyond the client's timeout)
        server.drop_next()                # read the request, close without answering
        ...
        assert sorted(server.accepted_send_ids()) == sorted(set(server.accepted_send_ids()))

Like SendGrid it checks `Authorization: Bearer <key>` (401), validates the payload (400
with SendGrid-style `{"errors": [{"message", "field"}]}`), and answers 202 with an
`X-Message-Id` (200 in sandbox mode, as SendGrid does). Scripted faults are consumed in
order, optionally only by requests matching a predicate. It binds 127.0.0.1 on a free port
and stops cleanly, interrupting any delayed answer.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAIL_SEND_PATH = "/v3/mail/send"
MAX_PERSONALIZATIONS = 1000
_EMPTY_CONTENT = "The content value must be a string at least one character in length."
_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+\.[A-Za-z]{2,}$")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received: `body` is the parsed JSON (None if it was not JSON)."""

    method: str
    path: str
    headers: dict[str, str]
    raw: bytes
    body: Any
    received_at: float

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)

    @property
    def send_ids(self) -> list[str]:
        if not isinstance(self.body, dict):
            return []
        return [
            p.get("custom_args", {}).get("send_id")
            for p in self.body.get("personalizations") or []
            if isinstance(p, dict)
        ]


Predicate = Callable[[RecordedRequest], bool]


@dataclass
class Fault:
    """A scripted reaction to the next matching request."""

    kind: str  # "status" | "delay" | "drop"
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    seconds: float = 0.0
    accept: bool = False  # for "drop": record the mail as accepted (lost answer)
    when: Predicate | None = None


class FakeSendGrid:
    def __init__(self, api_key: str = "SG.fake-test-key.0123456789abcdef") -> None:
        self.api_key = api_key
        self.requests: list[RecordedRequest] = []  # everything received
        self.accepted: list[RecordedRequest] = []  # what SendGrid would have queued
        self.accepted_at: list[float] = []  # when each of `accepted` was taken (time.time())
        self._faults: list[Fault] = []
        # Reentrant: a fault predicate may itself inspect the server (requests, send ids).
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._handled = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeSendGrid:
        handler = _make_handler(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        # Non-daemon handler threads are joined by server_close(): stop() returns only when
        # every handler has finished (stop() first wakes delayed ones and closes sockets).
        self._server.daemon_threads = False
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-sendgrid",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # wakes delayed handlers
        with self._lock:
            for connection in list(self._connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> FakeSendGrid:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The value for SENDGRID_HOST."""
        return f"http://127.0.0.1:{self.port}"

    # -- fault injection -------------------------------------------------------------------

    def fail_next(
        self,
        status: int = 500,
        headers: dict[str, str] | None = None,
        body: Any = None,
        *,
        times: int = 1,
        when: Predicate | None = None,
    ) -> None:
        """Answer the next `times` matching requests with `status` (nothing is accepted)."""
        for _ in range(times):
            self._add(
                Fault("status", status=status, headers=dict(headers or {}), body=body, when=when)
            )

    def delay_next(self, seconds: float, *, when: Predicate | None = None) -> None:
        """Wait `seconds` before handling the next matching request normally. If the client
        gave up meanwhile the mail is still accepted, as at the real provider."""
        self._add(Fault("delay", seconds=seconds, when=when))

    def drop_next(self, *, accept: bool = False, when: Predicate | None = None) -> None:
        """Read the next matching request, then close the connection without answering.
        `accept=True` records it as accepted (the provider took it, the answer was lost)."""
        self._add(Fault("drop", accept=accept, when=when))

    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    def _add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, request: RecordedRequest) -> Fault | None:
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.when is None or fault.when(request):
                    return self._faults.pop(index)
        return None

    # -- inspection ------------------------------------------------------------------------

    def accepted_send_ids(self) -> list[str]:
        """custom_args.send_id of every accepted personalization, duplicates kept."""
        with self._lock:
            return [sid for request in self.accepted for sid in request.send_ids]

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Block until `count` requests were fully handled (answered, failed or dropped)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._handled < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
        return True

    def _record(self, request: RecordedRequest, *, accepted: bool, handled: bool) -> None:
        with self._changed:
            if accepted:
                self.accepted.append(request)
                self.accepted_at.append(time.time())
            if handled:
                self._handled += 1
                self._changed.notify_all()

    def _received(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    # -- the API ---------------------------------------------------------------------------

    def respond(self, request: RecordedRequest) -> tuple[int, dict[str, str], Any]:
        """What SendGrid would answer to an undisturbed request."""
        if request.method != "POST" or request.path.split("?")[0] != MAIL_SEND_PATH:
            return 404, {}, _errors([("not found", None)])
        if request.header("Authorization") != f"Bearer {self.api_key}":
            return (
                401,
                {},
                _errors(
                    [("The provided authorization grant is invalid, expired, or revoked", None)]
                ),
            )
        problems = validate_mail_send(request.body)
        if problems:
            return 400, {}, _errors(problems)
        sandbox = bool(request.body.get("mail_settings", {}).get("sandbox_mode", {}).get("enable"))
        message_id = secrets.token_urlsafe(16)
        return (200 if sandbox else 202), {"X-Message-Id": message_id}, None


def _errors(problems: list[tuple[str, str | None]]) -> dict[str, Any]:
    return {"errors": [{"message": m, "field": f, "help": None} for m, f in problems]}


def validate_mail_send(body: Any) -> list[tuple[str, str | None]]:
    """The parts of SendGrid's mail/send validation our sender must respect."""
    if not isinstance(body, dict):
        return [("Bad Request: the request body must be a JSON object", None)]
    problems: list[tuple[str, str | None]] = []
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        return [("You must have at least one personalization.", "personalizations")]
    if len(personalizations) > MAX_PERSONALIZATIONS:
        problems.append(
            (
                "The personalization block is limited to 1000 personalizations per API request."
                f" You have provided {len(personalizations)} personalizations.",
                "personalizations",
            )
        )
    has_subject = isinstance(body.get("subject"), str) and body["subject"] != ""
    seen: set[str] = set()
    for index, item in enumerate(personalizations):
        where = f"personalizations.{index}"
        if not isinstance(item, dict):
            problems.append(("Each personalization must be an object.", where))
            continue
        to = item.get("to")
        if not isinstance(to, list) or not to:
            problems.append(
                ("The to parameter is required for all personalization objects.", where)
            )
            continue
        for recipient in to:
            address = recipient.get("email") if isinstance(recipient, dict) else None
            if not isinstance(address, str) or not _EMAIL.match(address):
                problems.append(("Does not contain a valid address.", f"{where}.to"))
            elif address.lower() in seen:
                problems.append(
                    (
                        "Each unique email address in the personalizations array should only"
                        f" be included once. You have included {address} more than once.",
                        f"{where}.to",
                    )
                )
            else:
                seen.add(address.lower())
        if not has_subject and not item.get("subject") and not body.get("template_id"):
            problems.append(("The subject is required.", f"{where}.subject"))
        for name in ("substitutions", "custom_args", "headers"):
            mapping = item.get(name)
            if mapping is None:
                continue
            if not isinstance(mapping, dict) or not all(
                isinstance(v, str) for v in mapping.values()
            ):
                problems.append((f"{name} values must be strings.", f"{where}.{name}"))
    sender = body.get("from")
    if not isinstance(sender, dict) or not _EMAIL.match(str(sender.get("email", ""))):
        problems.append(("The from object must be provided for every email send.", "from"))
    content = body.get("content")
    if body.get("template_id") is None:
        if not isinstance(content, list) or not content:
            problems.append(
                (
                    "Unless a valid template_id is provided, the content parameter is required.",
                    "content",
                )
            )
        else:
            for index, part in enumerate(content):
                value = part.get("value") if isinstance(part, dict) else None
                if not isinstance(value, str) or not value:
                    problems.append((_EMPTY_CONTENT, f"content.{index}.value"))
            types = [p.get("type") for p in content if isinstance(p, dict)]
            if "text/plain" in types and types[0] != "text/plain":
                problems.append(("If present, text/plain content must be first.", "content"))
    categories = body.get("categories")
    if categories is not None and (
        not isinstance(categories, list)
        or len(categories) > 10
        or not all(isinstance(c, str) and 0 < len(c) <= 255 for c in categories)
    ):
        problems.append(("Up to 10 categories of at most 255 characters.", "categories"))
    asm = body.get("asm")
    if asm is not None and not (isinstance(asm, dict) and isinstance(asm.get("group_id"), int)):
        problems.append(("The asm group_id must be an integer.", "asm.group_id"))
    return problems


def _make_handler(server: FakeSendGrid) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 10  # a client that connects and says nothing cannot hang stop()

        def setup(self) -> None:
            super().setup()
            with server._lock:
                server._connections.add(self.connection)

        def finish(self) -> None:
            with contextlib.suppress(OSError):
                super().finish()
            with server._lock:
                server._connections.discard(self.connection)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: tests read server.requests instead

        def do_POST(self) -> None:
            self._handle()

        def do_GET(self) -> None:
            self._handle()

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            request = RecordedRequest(
                method=self.command,
                path=self.path,
                headers=dict(self.headers.items()),
                raw=raw,
                body=body,
                received_at=time.time(),
            )
            server._received(request)
            fault = server._take_fault(request)
            if fault is not None and fault.kind == "drop":
                server._record(request, accepted=fault.accept, handled=True)
                self._drop()
                return
            # A delay interrupted by stop() ends like a drop: nothing accepted.
            if fault is not None and fault.kind == "delay" and server._stopping.wait(fault.seconds):
                server._record(request, accepted=False, handled=True)
                self._drop()
                return
            if fault is not None and fault.kind == "status":
                status, headers, payload = fault.status, fault.headers, fault.body
            else:
                status, headers, payload = server.respond(request)
            server._record(request, accepted=200 <= status < 300, handled=True)
            self._answer(status, headers, payload)

        def _drop(self) -> None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

        def _answer(self, status: int, headers: dict[str, str], payload: Any) -> None:
            data = b"" if payload is None else json.dumps(payload).encode()
            self.close_connection = True
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if data:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                if data:
                    self.wfile.write(data)
            except OSError:
                pass  # the client gave up (timeout): what it missed is recorded already

    return Handler
