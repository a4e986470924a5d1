"""Webhook test helpers: a SendGrid-style signer and a minimal in-process ASGI client.

Starlette's TestClient needs httpx, which this environment does not have, so `call` drives
the ASGI app directly: it is enough for one request/response and lets a test feed the body
in chunks (to prove the size cap stops reading early).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pipelines.lib.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER


@dataclass(frozen=True)
class Signer:
    """An ECDSA P-256 key pair, signing exactly as SendGrid does."""

    private_key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls) -> Signer:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @property
    def public_key(self) -> str:
        # What SendGrid shows in the console: base64 DER SubjectPublicKeyInfo, no PEM armour.
        der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def sign(self, body: bytes, timestamp: str) -> str:
        der = self.private_key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(der).decode()

    def headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        return {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: self.sign(body, stamp),
            TIMESTAMP_HEADER: stamp,
        }


# One key pair for the session: generation is cheap, but a shared key keeps tests focused.
SIGNER = Signer.generate()


def sample_events(count: int = 2, prefix: str = "ev") -> list[dict[str, Any]]:
    return [
        {
            "email": f"user{i}@example.com",
            "timestamp": 1_764_000_000 + i,
            "event": "delivered" if i % 2 == 0 else "unsubscribe",
            "sg_event_id": f"{prefix}-{i}",
            "sg_message_id": f"msg-{i}.filter0001",
            "send_id": f"send-{i}",
            "smtp-id": f"<{i}@example.com>",
        }
        for i in range(count)
    ]


def landed_files(landing_dir: Path) -> list[Path]:
    """Every file under the landing dir, temp files included: 'nothing stored' means none."""
    return sorted(p for p in landing_dir.rglob("*") if p.is_file())


def final_files(landing_dir: Path) -> list[Path]:
    """What ingestion would pick up: `.jsonl` files not hidden and not temp."""
    return sorted(
        p
        for p in landing_dir.rglob("*.jsonl")
        if p.is_file() and not p.name.startswith(".") and not p.name.endswith(".tmp")
    )


def read_lines(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n"), "every JSON Lines record ends with a newline"
    return text[:-1].split("\n")


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    chunks_consumed: int = 0

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Exchange:
    chunks: list[bytes]
    consumed: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)


def call(
    app: Callable[..., Any],
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    chunks: Iterable[bytes] | None = None,
    content_length: bool = True,
) -> Response:
    """One HTTP request through the ASGI app. `chunks` streams the body in pieces and, with
    `content_length=False`, omits Content-Length as a chunked upload would."""
    pieces = list(chunks) if chunks is not None else [body]
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    if content_length:
        raw_headers.append((b"content-length", str(sum(map(len, pieces))).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": raw_headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    exchange = _Exchange(chunks=pieces)

    async def receive() -> dict[str, Any]:
        if exchange.consumed < len(exchange.chunks):
            index = exchange.consumed
            exchange.consumed += 1
            more = exchange.consumed < len(exchange.chunks)
            return {"type": "http.request", "body": exchange.chunks[index], "more_body": more}
        await asyncio.sleep(3600)  # the app asked past the end: behave like an idle client
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        exchange.messages.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in exchange.messages if m["type"] == "http.response.start")
    payload = b"".join(
        m.get("body", b"") for m in exchange.messages if m["type"] == "http.response.body"
    )
    return Response(
        status=start["status"],
        headers={k.decode(): v.decode() for k, v in start.get("headers", [])},
        body=payload,
        chunks_consumed=exchange.consumed,
    )
