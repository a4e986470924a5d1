"""uvicorn's HTTP/1.1 protocol with deadlines for reading a request (slowloris).

uvicorn (0.54) bounds only the idle time between requests (`timeout_keep_alive`), and that
timer is reset by every byte received; nothing bounds how long a client may take to send a
request. A client that opens a connection and sends nothing, half the headers, or the body
a byte at a time holds a connection (and, with enough of them, the server) forever; an
ASGI middleware cannot help with headers, because the app is only called once they are
complete. So the deadlines live in the protocol:

- headers: from the connection's start (or the first byte of the next request on a kept-
  alive connection) until the request line and headers are parsed;
- body: from then until the end of the body.

When one expires the connection is closed; the app sees a disconnect, stores nothing and
acknowledges nothing, so SendGrid retries. Once a request is fully received no deadline
runs: the time the app takes (signature check, fsync) is not the client's.

This builds on uvicorn's h11 protocol class, pinned in constraints.txt; the real-socket
tests in tests/lib/webhook/test_webhook_limits.py catch a change of its internals.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from typing import Any, ClassVar

import h11
from uvicorn.protocols.http.h11_impl import DEFAULT_MAX_INCOMPLETE_EVENT_SIZE, H11Protocol

log = logging.getLogger(__name__)


class _ObservedConnection(h11.Connection):
    """h11's connection, reporting the events that move a request between phases."""

    def __init__(self, on_event: Callable[[h11.Event], None], max_size: int) -> None:
        super().__init__(h11.SERVER, max_incomplete_event_size=max_size)
        self._on_event = on_event

    def next_event(self) -> Any:
        event = super().next_event()
        if isinstance(event, h11.Request | h11.EndOfMessage):
            self._on_event(event)
        return event


class DeadlineH11Protocol(H11Protocol):
    """H11Protocol closing connections whose request headers or body arrive too slowly.
    `deadline_protocol` makes the subclass uvicorn instantiates, with the timeouts set."""

    header_timeout: ClassVar[float]
    body_timeout: ClassVar[float]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        max_size = self.config.h11_max_incomplete_event_size or DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
        # Replaced before any byte arrives, so every request cycle uses the observed one.
        self.conn = _ObservedConnection(self._on_request_event, max_size)
        self._deadline: asyncio.TimerHandle | None = None
        self._between_requests = False  # kept alive after a response, no byte of the next

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm("headers", self.header_timeout)  # a client that never sends a byte, too

    def data_received(self, data: bytes) -> None:
        if self._between_requests:
            self._arm("headers", self.header_timeout)
        super().data_received(data)

    def on_response_complete(self) -> None:
        if self._deadline is None:  # the request was read in full; wait as keep-alive says
            self._between_requests = True
        # (Otherwise the app answered before the body ended, e.g. 413: the body deadline
        # keeps running.) super() may start a pipelined request, which re-arms.
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _on_request_event(self, event: h11.Event) -> None:
        if isinstance(event, h11.Request):
            self._arm("body", self.body_timeout)
        elif self.conn.our_state is h11.DONE:
            # The body ended after the app had answered; uvicorn starts the next cycle at
            # once, with no keep-alive timer: the next request's headers are on the clock.
            self._arm("headers", self.header_timeout)
        else:
            self._disarm()  # fully received: the app's time is not the client's

    def _arm(self, phase: str, seconds: float) -> None:
        self._disarm()
        self._between_requests = False
        self._deadline = self.loop.call_later(seconds, self._expired, phase, seconds)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, phase: str, seconds: float) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "?"
        log.warning(
            "closing connection from %s: request %s not received within %g s",
            client,
            phase,
            seconds,
        )
        self.transport.close()


def deadline_protocol(header_timeout: float, body_timeout: float) -> type[DeadlineH11Protocol]:
    """The protocol class for `uvicorn.run(http=...)` with these deadlines, in seconds."""
    for name, value in (("header_timeout", header_timeout), ("body_timeout", body_timeout)):
        if not 0 < value < math.inf:  # also refuses NaN: a deadline that never fires
            raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
    return type(
        "WebhookH11Protocol",
        (DeadlineH11Protocol,),
        {"header_timeout": float(header_timeout), "body_timeout": float(body_timeout)},
    )
