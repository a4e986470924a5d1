"""SendGrid Event Webhook signature checks, through the sendgrid library's own helper.

SendGrid signs `timestamp + raw body` with ECDSA P-256 / SHA-256 and sends the base64 DER
signature and the Unix timestamp in headers. We verify with `EventWebhook` rather than
re-implementing it, so a change in SendGrid's scheme arrives with a library upgrade.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from enum import Enum

from cryptography.hazmat.primitives.asymmetric import ec
from sendgrid.helpers.eventwebhook import EventWebhook

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"


class Verdict(Enum):
    OK = "ok"
    MISSING = "missing"  # no signature or timestamp header: 401
    STALE = "stale"  # outside the replay window: 403
    FORGED = "forged"  # malformed or not made by the key: 403


@dataclass(frozen=True)
class Check:
    verdict: Verdict
    reason: str

    @property
    def ok(self) -> bool:
        return self.verdict is Verdict.OK


class SignatureVerifier:
    """Holds the parsed public key; parsing happens once, at start-up, so a bad key fails
    the server before it binds instead of rejecting every event."""

    def __init__(self, public_key: str, *, max_age_seconds: int) -> None:
        helper = EventWebhook()
        cleaned = "".join(public_key.split())  # keys pasted from the console wrap lines
        try:
            key = helper.convert_public_key_to_ecdsa(cleaned)
        except (ValueError, TypeError) as exc:
            raise ValueError(
                "SENDGRID_WEBHOOK_PUBLIC_KEY is not a base64 DER public key "
                "(copy it from SendGrid: Settings > Mail Settings > Signed Event Webhook)"
            ) from exc
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("SENDGRID_WEBHOOK_PUBLIC_KEY is not an elliptic-curve (ECDSA) key")
        self._helper = helper
        self._key = key
        self._max_age = max_age_seconds

    def check_headers(self, signature: str | None, timestamp: str | None, now: float) -> Check:
        """Presence and freshness: decidable before reading the body."""
        if not signature or not timestamp:
            return Check(Verdict.MISSING, "missing signature or timestamp header")
        try:
            sent_at = int(timestamp.strip())
        except ValueError:
            return Check(Verdict.FORGED, "timestamp header is not Unix seconds")
        # Both directions: a far-future timestamp would otherwise stay replayable for long.
        if abs(now - sent_at) > self._max_age:
            return Check(Verdict.STALE, "timestamp outside the replay window")
        return Check(Verdict.OK, "")

    def verify(self, body: bytes, signature: str, timestamp: str) -> Check:
        """The signature over `timestamp + body`; call after `check_headers` passed."""
        try:
            # The helper takes text and re-encodes it as UTF-8; strict decoding round-trips
            # exactly, so the bytes verified are the bytes received.
            payload = body.decode("utf-8")
        except UnicodeDecodeError:
            return Check(Verdict.FORGED, "body is not UTF-8, so SendGrid did not sign it")
        try:
            valid = self._helper.verify_signature(
                payload, signature.strip(), timestamp.strip(), public_key=self._key
            )
        except (binascii.Error, ValueError):
            return Check(Verdict.FORGED, "signature header is not base64 DER")
        if not valid:
            return Check(Verdict.FORGED, "signature does not match")
        return Check(Verdict.OK, "")
