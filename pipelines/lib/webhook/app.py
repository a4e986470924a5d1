"""The SendGrid Event Webhook receiver as a Starlette ASGI app.

Checks run cheapest-first and nothing is written until all pass: headers (401/403),
replay window (403), size (413, read streaming), signature (403), JSON shape (400).
Only then are the events landed durably and 200 returned; SendGrid retries non-2xx
answers for 24 h, so refusing or crashing loses no event as long as nothing is
acknowledged before it is fsynced.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pipelines.lib.webhook.signature import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureVerifier,
    Verdict,
)
from pipelines.lib.webhook.store import (
    BeforeCommitHook,
    MalformedPayload,
    append_events,
    split_events,
)

log = logging.getLogger(__name__)

EVENTS_PATH = "/sendgrid/events"
_STATUS_FOR = {Verdict.MISSING: 401, Verdict.STALE: 403, Verdict.FORGED: 403}


class _TooLarge(Exception):
    pass


def create_app(
    *,
    landing_dir: Path,
    public_key: str | None,
    max_body_bytes: int = 5 * 1024 * 1024,
    max_age_seconds: int = 300,
    clock: Callable[[], float] = time.time,
    before_commit: BeforeCommitHook | None = None,
) -> Starlette:
    """The receiver. `public_key=None` accepts unsigned posts (dev only: `serve` refuses it in
    staging/prod) and lands them as `*.unsigned.jsonl` so they are recognisable later.
    `before_commit` is a test seam called between the temp write and the rename."""
    verifier = (
        SignatureVerifier(public_key, max_age_seconds=max_age_seconds)
        if public_key is not None
        else None
    )
    if verifier is None:
        log.warning("webhook receiver runs WITHOUT signature verification (dev only)")

    async def receive_events(request: Request) -> JSONResponse:
        signature = request.headers.get(SIGNATURE_HEADER)
        timestamp = request.headers.get(TIMESTAMP_HEADER)
        if verifier is not None:
            check = verifier.check_headers(signature, timestamp, clock())
            if not check.ok:
                return _reject(request, _STATUS_FOR[check.verdict], check.reason)

        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                too_big = int(declared) > max_body_bytes
            except ValueError:
                return _reject(request, 400, "Content-Length is not a number")
            if too_big:  # refuse before reading a byte
                return _reject(request, 413, f"body over {max_body_bytes} bytes")
        try:
            body = await _read_capped(request, max_body_bytes)
        except _TooLarge:  # chunked bodies have no Content-Length; stop at the cap
            return _reject(request, 413, f"body over {max_body_bytes} bytes")
        except ClientDisconnect:
            return _reject(request, 400, "client disconnected mid-body")

        if verifier is not None:
            assert signature is not None and timestamp is not None  # check_headers passed
            check = verifier.verify(body, signature, timestamp)
            if not check.ok:
                return _reject(request, _STATUS_FOR[check.verdict], check.reason)

        try:
            events = split_events(body)
        except MalformedPayload as exc:
            return _reject(request, 400, str(exc))
        if not events:
            return JSONResponse({"stored": 0})

        try:
            # Blocking file I/O and fsyncs: off the event loop.
            path = await run_in_threadpool(
                append_events,
                landing_dir,
                events,
                received_at=clock(),
                unsigned=verifier is None,
                before_commit=before_commit,
            )
        except OSError:
            # Not acknowledged, so SendGrid retries; the details go to our log only.
            log.exception("could not land webhook events")
            return JSONResponse({"error": "storage unavailable"}, status_code=503)
        log.info("landed %d webhook events in %s", len(events), path.name)
        return JSONResponse({"stored": len(events)})

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route(EVENTS_PATH, receive_events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


async def _read_capped(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _reject(request: Request, status: int, reason: str) -> JSONResponse:
    # Never log the body or headers: they carry recipients' addresses.
    client = request.client.host if request.client else "?"
    log.warning("webhook rejected from %s: %d %s", client, status, reason)
    return JSONResponse({"error": reason}, status_code=status)


ENVIRONMENTS = ("dev", "staging", "prod")


def serve(
    host: str,
    port: int,
    *,
    env: str,
    landing_dir: Path,
    public_key: str | None,
    max_body_bytes: int = 5 * 1024 * 1024,
    max_age_seconds: int = 300,
    header_timeout: float = 10.0,
    body_timeout: float = 60.0,  # a 5 MiB body in 60 s needs ~85 KiB/s; SendGrid is faster
) -> None:
    """Run the receiver with uvicorn until interrupted.

    Everything that can be wrong with the configuration raises `ValueError` before the
    socket is bound, so a misconfigured deploy fails loudly instead of answering SendGrid.
    A client whose request headers (or body) are not all received within `header_timeout`
    (or `body_timeout`) seconds is disconnected (pipelines/lib/webhook/protocol.py).
    """
    if env not in ENVIRONMENTS:
        raise ValueError(f"BIS_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env!r}")
    key = public_key.strip() if public_key else None
    if env != "dev" and not key:
        raise ValueError(
            f"refusing to start the webhook receiver in {env} without "
            "SENDGRID_WEBHOOK_PUBLIC_KEY: unsigned events could be forged"
        )
    # Imported here: uvicorn is only needed to serve, not to build or test the app.
    import uvicorn

    from pipelines.lib.webhook.protocol import deadline_protocol

    protocol = deadline_protocol(header_timeout, body_timeout)  # bad values fail here

    app = create_app(  # parses the key, so a bad key also fails before binding
        landing_dir=landing_dir,
        public_key=key,
        max_body_bytes=max_body_bytes,
        max_age_seconds=max_age_seconds,
    )
    landing_dir.mkdir(parents=True, exist_ok=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        http=protocol,  # h11 with request deadlines; headers capped at h11's 16 KiB
        timeout_keep_alive=5,
        ws="none",  # no WebSocket upgrades: nothing here speaks it
        server_header=False,
        log_level="info",
    )
