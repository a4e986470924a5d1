"""SendGrid v3 mail/send through the official `sendgrid` library.

One request carries up to 1000 personalizations that share a body: the template is
rendered with substitution tokens (see render.py) and each personalization carries its
user's values, unsubscribe header and `custom_args.send_id` (how webhook events find the
ledger row). Retries follow retry.py: 429/5xx/unreachable are retried with bounded backoff,
other 4xx fail, and a timeout or a connection lost after sending is `unknown`, never resent.

The API key is a secret: it is only handed to the client, never formatted into a log
record, outcome or exception; the library's own debug log of request headers is redacted.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import python_http_client
from sendgrid import SendGridAPIClient

from pipelines.lib.email.addresses import email_address_problem
from pipelines.lib.email.headers import sendgrid_name, subject_text
from pipelines.lib.email.message import (
    EmailSender,
    OutgoingBatch,
    ProviderAccountError,
    Recipient,
    RenderedEmail,
    SenderIdentity,
    SendOutcome,
)
from pipelines.lib.email.render import TemplateRenderer, TemplateRenderError
from pipelines.lib.email.retry import (
    AttemptResult,
    RetryPolicy,
    classify_exception,
    classify_response,
    run_with_retries,
)

logger = logging.getLogger(__name__)

MAX_PERSONALIZATIONS = 1000
# SendGrid caps substitutions per personalization; beyond it the whole request is refused,
# so such a recipient is sent with a literal body of its own instead.
MAX_SUBSTITUTION_BYTES = 10_000
_LIBRARY_LOGGER = "python_http_client.client"
_BEARER = re.compile(r"(Bearer\s+)[^\s'\",}]+", re.IGNORECASE)
_SENDGRID_KEY = re.compile(r"SG\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}")


class _RedactSecrets(logging.Filter):
    """Strips bearer tokens and known keys from records (python_http_client logs its
    request headers, Authorization included, at DEBUG)."""

    def __init__(self) -> None:
        super().__init__(name="bis-redact-secrets")
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message, self.secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


_REDACTOR = _RedactSecrets()


def redact(text: str, secrets: set[str] | frozenset[str] = frozenset()) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    text = _BEARER.sub(r"\1[redacted]", text)
    return _SENDGRID_KEY.sub("[redacted]", text)


def _install_redaction(api_key: str) -> None:
    _REDACTOR.secrets.add(api_key)
    library_logger = logging.getLogger(_LIBRARY_LOGGER)
    if _REDACTOR not in library_logger.filters:
        library_logger.addFilter(_REDACTOR)


@dataclass
class _Chunk:
    """Up to 1000 recipients that share one body; each email address at most once."""

    email: RenderedEmail
    members: list[tuple[Recipient, dict[str, str]]] = field(default_factory=list)
    addresses: set[str] = field(default_factory=set)


class SendGridSender(EmailSender):
    provider = "sendgrid"

    def __init__(
        self,
        api_key: str,
        host: str,
        renderer: TemplateRenderer,
        identity: SenderIdentity,
        *,
        sandbox: bool,
        asm_group_id: int | None = None,
        max_attempts: int = 5,
        base_delay: float = 0.5,
        max_delay: float = 30,
        timeout: float = 10,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        max_recipients_per_request: int = MAX_PERSONALIZATIONS,
    ) -> None:
        if not api_key or not api_key.strip():
            # Checked here: the library would silently fall back to $SENDGRID_API_KEY.
            raise ValueError("SendGrid API key is empty: set SENDGRID_API_KEY")
        if urlsplit(host).scheme not in ("http", "https") or not urlsplit(host).netloc:
            raise ValueError(f"SendGrid host must be an http(s) URL, got {host!r}")
        if not 1 <= max_recipients_per_request <= MAX_PERSONALIZATIONS:
            raise ValueError(
                f"max_recipients_per_request must be 1..{MAX_PERSONALIZATIONS},"
                f" got {max_recipients_per_request}"
            )
        # Below 1000 only to measure (bench/: one request per message); production batches.
        self.max_recipients_per_request = max_recipients_per_request
        _install_redaction(api_key)
        self._secrets = frozenset({api_key})
        self._client = SendGridAPIClient(api_key=api_key, host=host.rstrip("/"))
        self.host = host.rstrip("/")
        self.renderer = renderer
        self.identity = identity
        self.sandbox = sandbox
        self.asm_group_id = asm_group_id
        self.policy = RetryPolicy(max_attempts, base_delay, max_delay)
        self.timeout = timeout
        self._sleep = sleep
        self._now = now
        self._rng = rng or random.Random()

    def __repr__(self) -> str:
        return f"SendGridSender(host={self.host!r}, sandbox={self.sandbox})"

    # -- EmailSender -----------------------------------------------------------------------

    def send(self, batch: OutgoingBatch) -> list[SendOutcome]:
        outcomes: dict[str, SendOutcome] = {}
        chunks = self._plan(batch, outcomes)
        for number, chunk in enumerate(chunks, start=1):
            try:
                results = self._send_chunk(batch, chunk, number, len(chunks))
            except ProviderAccountError as exc:
                # Earlier requests of this batch went out: their outcomes must reach the ledger.
                raise ProviderAccountError(str(exc), list(outcomes.values())) from None
            for outcome in results:
                outcomes[outcome.send_id] = outcome
        return [outcomes[r.send_id] for r in batch.recipients]

    # -- planning --------------------------------------------------------------------------

    def _plan(self, batch: OutgoingBatch, outcomes: dict[str, SendOutcome]) -> list[_Chunk]:
        """Group recipients by identical body, then cut groups into requests.

        Recipients that cannot be sent (bad address, template error) get their `failed`
        outcome here, before any request, so they cannot spoil a request for others.
        """
        groups: dict[RenderedEmail, list[_Chunk]] = {}
        order: list[_Chunk] = []
        logged: set[str] = set()
        for recipient in batch.recipients:
            problem = email_address_problem(recipient.email)
            if problem:
                outcomes[recipient.send_id] = _failed(recipient, problem, attempts=0)
                continue
            try:
                share = self.renderer.render_for_batch(batch.template, recipient)
            except TemplateRenderError as exc:
                outcomes[recipient.send_id] = _failed(recipient, str(exc), attempts=0)
                if str(exc) not in logged:  # once per distinct error, not once per user
                    logged.add(str(exc))
                    logger.error("sendgrid: cannot render %s: %s", batch.template, exc)
                continue
            email, substitutions = share.email, share.substitutions
            if _substitution_bytes(substitutions) > MAX_SUBSTITUTION_BYTES:
                email, substitutions = self.renderer.render(batch.template, recipient), {}
            chunk = self._chunk_for(groups.setdefault(email, []), email, recipient, order)
            chunk.members.append((recipient, substitutions))
            chunk.addresses.add(recipient.email.lower())
        return order

    def _chunk_for(
        self, chunks: list[_Chunk], email: RenderedEmail, recipient: Recipient, order: list[_Chunk]
    ) -> _Chunk:
        # SendGrid refuses a request that names one address twice, so a repeated address
        # goes to the next request for this body.
        address = recipient.email.lower()
        for chunk in chunks:
            if (
                len(chunk.members) < self.max_recipients_per_request
                and address not in chunk.addresses
            ):
                return chunk
        chunk = _Chunk(email=email)
        chunks.append(chunk)
        order.append(chunk)
        return chunk

    # -- one request -----------------------------------------------------------------------

    def _send_chunk(
        self, batch: OutgoingBatch, chunk: _Chunk, number: int, total: int
    ) -> list[SendOutcome]:
        body = self._request_body(batch, chunk)
        label = f"{batch.sequence_id}/{batch.step_id} request {number}/{total}"

        def on_retry(result: AttemptResult, attempt: int, delay: float) -> None:
            logger.warning(
                "sendgrid: %s: %s; retrying in %.2fs (attempt %d of %d)",
                label,
                result.error,
                delay,
                attempt + 1,
                self.policy.max_attempts,
            )

        result, attempts = run_with_retries(
            lambda: self._attempt(body),
            self.policy,
            sleep=self._sleep,
            rng=self._rng,
            on_retry=on_retry,
        )
        recipients = [recipient for recipient, _ in chunk.members]
        if result.verdict == "halt":
            logger.error("sendgrid: %s: account refused: %s", label, result.error)
            raise ProviderAccountError(
                f"SendGrid refused the account, not a message ({result.error}): check"
                " SENDGRID_API_KEY (revoked or wrong?), its mail.send permission and the"
                " verified sender identity; sending stopped and the unsent messages stay"
                " planned"
            )
        if result.verdict == "accepted":
            logger.info(
                "sendgrid: %s: %d recipients accepted (HTTP %s, message id %s, %d attempts)",
                label,
                len(recipients),
                result.status,
                result.message_id,
                attempts,
            )
            return [
                SendOutcome(r.send_id, "sent", result.message_id, None, attempts)
                for r in recipients
            ]
        error = result.error or "no detail"
        status = "unknown" if result.verdict == "unknown" else "failed"
        log = logger.warning if status == "unknown" else logger.error
        log("sendgrid: %s: %d recipients %s: %s", label, len(recipients), status, error)
        return [SendOutcome(r.send_id, status, None, error, attempts) for r in recipients]

    def _attempt(self, body: dict[str, Any]) -> AttemptResult:
        result = self._call(body)
        if result.error:
            # Error text comes from the provider's body or an exception: scrub it once here,
            # before it reaches a log line (retries) or an outcome.
            result = replace(result, error=redact(result.error, self._secrets))
        return result

    def _call(self, body: dict[str, Any]) -> AttemptResult:
        try:
            response = self._client.client.mail.send.post(request_body=body, timeout=self.timeout)
        except python_http_client.exceptions.HTTPError as exc:
            return classify_response(exc.status_code, exc.headers, exc.body, self._now())
        except Exception as exc:  # judged by classify_exception: retry, or unknown
            return classify_exception(exc, timeout=self.timeout)
        return classify_response(response.status_code, response.headers, response.body, self._now())

    def _request_body(self, batch: OutgoingBatch, chunk: _Chunk) -> dict[str, Any]:
        personalizations = []
        for recipient, substitutions in chunk.members:
            # SendGrid builds the To header from these: the name cleaned and, where SendGrid
            # could read it as address structure, encoded (headers.sendgrid_name).
            to: dict[str, str] = {"email": recipient.email}
            name = sendgrid_name(recipient.name)
            if name:
                to["name"] = name
            personalization: dict[str, Any] = {
                "to": [to],
                "custom_args": {"send_id": recipient.send_id},
                "headers": {
                    "List-Unsubscribe": f"<{self.identity.unsubscribe_link(recipient.send_id)}>",
                    "X-BIS-Send-Id": recipient.send_id,
                },
            }
            if substitutions:
                personalization["substitutions"] = substitutions
            personalizations.append(personalization)
        from_: dict[str, str] = {"email": self.identity.from_email}
        from_name = sendgrid_name(self.identity.from_name)
        if from_name:
            from_["name"] = from_name
        body: dict[str, Any] = {
            "personalizations": personalizations,
            "from": from_,
            # Clean already (render() makes it so); cleaning is idempotent, so it stays so.
            "subject": subject_text(chunk.email.subject),
            # SendGrid requires text/plain before text/html.
            "content": [
                {"type": "text/plain", "value": chunk.email.text},
                {"type": "text/html", "value": chunk.email.html},
            ],
            "categories": list(dict.fromkeys([batch.sequence_id, batch.step_id])),
            # Merged into every personalization's custom_args, so webhook events carry them.
            "custom_args": {"sequence_id": batch.sequence_id, "step_id": batch.step_id},
            "headers": {
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                "X-BIS-Sequence": batch.sequence_id,
                "X-BIS-Step": batch.step_id,
            },
            "mail_settings": {"sandbox_mode": {"enable": bool(self.sandbox)}},
        }
        if self.asm_group_id is not None:
            body["asm"] = {"group_id": int(self.asm_group_id)}
        return body


def _failed(recipient: Recipient, error: str, *, attempts: int) -> SendOutcome:
    return SendOutcome(recipient.send_id, "failed", None, error, attempts)


def _substitution_bytes(substitutions: dict[str, str]) -> int:
    return sum(len(k.encode()) + len(v.encode()) for k, v in substitutions.items())
