"""Retry policy for provider calls: pure functions, no I/O, so every rule is unit-tested.

What is retried, and why (docs/architecture.md §8: at most once per send_id, nothing lost silently):

- **Retried**, because the provider certainly did not accept the request:
  HTTP 429 (waits until `X-RateLimit-Reset`, else backs off), HTTP 5xx, and connection
  errors raised *before the request was fully sent* (refused, DNS, TLS, connect timeout).
- **`failed` at once**: any other HTTP status about the request's messages (400, 413, ...).
  Sending the same request again cannot succeed; the reason is kept.
- **`halt`**: a refusal of the account or its configuration, not of any message (401 a
  revoked or wrong key, 403 a missing permission or unverified sender, 404/405 a wrong host,
  a 400 naming only account-level fields such as `from`). Every other message would be
  refused the same way, so the run stops and the messages stay sendable: failing them would
  move their users on to later steps as if they had been tried.
- **`unknown` at once, never retried**: a read timeout, or the connection dropped after the
  request was sent. SendGrid may have accepted the mail and we cannot tell; retrying could
  deliver it twice, which the ledger's at-most-once guarantee forbids. The webhook events
  (matched by `custom_args.send_id`) settle what really happened.

When retries run out the last retryable error becomes `failed` (the provider answered, or
could not be reached, so nothing was accepted).
"""

from __future__ import annotations

import http.client
import json
import random
import urllib.error
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

Verdict = Literal["accepted", "retry", "failed", "unknown", "halt"]

# HTTP statuses that refuse the account or the configuration rather than a message.
ACCOUNT_STATUSES = frozenset({401, 403, 404, 405, 407})
# Request fields set by the deployment, not by a message: a 400 naming only these is a
# configuration fault that every message would hit.
ACCOUNT_FIELDS = ("from", "reply_to", "asm", "mail_settings", "tracking_settings", "ip_pool_name")

MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must not be negative")


@dataclass(frozen=True)
class AttemptResult:
    """How one provider call ended, already judged."""

    verdict: Verdict
    status: int | None = None
    error: str | None = None
    # Seconds the provider asked us to wait (429); None means "use backoff".
    retry_after: float | None = None
    message_id: str | None = None


def header(headers: Mapping[str, Any] | Any, name: str) -> str | None:
    """A header value, case-insensitively, from a dict or an `http.client.HTTPMessage`."""
    if headers is None:
        return None
    getter = getattr(headers, "get", None)
    if getter is not None:
        value = getter(name)
        if value is not None:
            return str(value)
    items = headers.items() if hasattr(headers, "items") else []
    lowered = name.lower()
    for key, value in items:
        if str(key).lower() == lowered:
            return str(value)
    return None


def _parsed_body(body: bytes | str | None) -> tuple[str, Any]:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    try:
        return text, json.loads(text) if text.strip() else None
    except (ValueError, RecursionError):
        return text, None


def _error_fields(body: bytes | str | None) -> list[str | None]:
    """The `field` of every SendGrid error in the body (None where an error names none)."""
    _, parsed = _parsed_body(body)
    if not isinstance(parsed, dict) or not isinstance(parsed.get("errors"), list):
        return []
    return [
        str(item["field"]) if isinstance(item, dict) and item.get("field") else None
        for item in parsed["errors"]
    ]


def is_account_fault(status: int, body: bytes | str | None) -> bool:
    """Whether an HTTP refusal is about the account or configuration, not a message."""
    if status in ACCOUNT_STATUSES:
        return True
    if status != 400:
        return False
    fields = _error_fields(body)
    return bool(fields) and all(
        field is not None and field.split(".")[0] in ACCOUNT_FIELDS for field in fields
    )


def describe_http_error(status: int, body: bytes | str | None) -> str:
    """`HTTP 400: <SendGrid's error messages>`, short, from the response body."""
    text, parsed = _parsed_body(body)
    detail = ""
    if isinstance(parsed, dict) and isinstance(parsed.get("errors"), list):
        messages = []
        for item in parsed["errors"]:
            if isinstance(item, dict) and item.get("message"):
                field = f" (field {item['field']})" if item.get("field") else ""
                messages.append(f"{item['message']}{field}")
        detail = "; ".join(messages)
    elif text.strip():
        detail = " ".join(text.split())[:200]
    reason = http.client.responses.get(status, "")
    message = (
        f"HTTP {status}" + (f" {reason}" if reason else "") + (f": {detail}" if detail else "")
    )
    return message[:MAX_ERROR_CHARS]


def rate_limit_wait(headers: Mapping[str, Any] | Any, now: float) -> float | None:
    """Seconds until the rate-limit window resets, from `X-RateLimit-Reset` (epoch
    seconds, what SendGrid sends) or `Retry-After` (seconds); None if neither is usable."""
    reset = header(headers, "X-RateLimit-Reset")
    if reset is not None:
        try:
            wait = float(reset) - now
        except ValueError:
            wait = None
        if wait is not None and wait > 0:
            return wait
    retry_after = header(headers, "Retry-After")
    if retry_after is not None:
        try:
            wait = float(retry_after)
        except ValueError:
            return None
        return wait if wait > 0 else None
    return None


def classify_response(
    status: int, headers: Mapping[str, Any] | Any, body: bytes | str | None, now: float
) -> AttemptResult:
    """Judge an HTTP answer. 2xx (SendGrid: 202, or 200 in sandbox mode) is accepted."""
    if 200 <= status < 300:
        return AttemptResult("accepted", status=status, message_id=header(headers, "X-Message-Id"))
    error = describe_http_error(status, body)
    if status == 429:
        return AttemptResult(
            "retry", status=status, error=error, retry_after=rate_limit_wait(headers, now)
        )
    if status >= 500:
        return AttemptResult("retry", status=status, error=error)
    if is_account_fault(status, body):
        return AttemptResult("halt", status=status, error=error)
    return AttemptResult("failed", status=status, error=error)


def classify_exception(exc: BaseException, timeout: float | None = None) -> AttemptResult:
    """Judge a call that raised instead of answering.

    urllib wraps every error raised while *sending* the request in `URLError` (connect
    refused, DNS, TLS, a connect timeout, a reset before the body was out): the provider
    cannot have accepted it, so it is retried. Anything raised later, while waiting for or
    reading the answer (read timeout, `RemoteDisconnected`, reset), is ambiguous.
    """
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        reason = exc.reason
        detail = (
            f"{type(reason).__name__}: {reason}"
            if isinstance(reason, BaseException)
            else str(reason)
        )
        return AttemptResult("retry", error=f"could not reach the provider ({detail})")
    if isinstance(exc, TimeoutError):
        after = f" after {timeout:g}s" if timeout else ""
        what = f"no response{after} (read timeout)"
    elif isinstance(exc, http.client.RemoteDisconnected):
        what = "connection closed by the provider without a response"
    elif isinstance(exc, (OSError, http.client.HTTPException)):
        what = f"connection failed after the request was sent ({type(exc).__name__}: {exc})"
    else:
        what = f"unexpected error during the request ({type(exc).__name__}: {exc})"
    return AttemptResult(
        "unknown",
        error=f"{what}; the provider may have accepted it, so it is not retried",
    )


def backoff_delay(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Exponential backoff with full jitter: uniform(0, min(max, base * 2**(attempt-1)))."""
    cap = min(policy.max_delay, policy.base_delay * (2 ** max(attempt - 1, 0)))
    return rng.uniform(0, cap)


def next_delay(
    result: AttemptResult, attempt: int, policy: RetryPolicy, rng: random.Random
) -> float:
    """How long to wait after `attempt` (1-based) ended in a retryable `result`."""
    if result.retry_after is not None:
        return min(result.retry_after, policy.max_delay)
    return backoff_delay(attempt, policy, rng)


def run_with_retries(
    attempt: Callable[[], AttemptResult],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None],
    rng: random.Random,
    on_retry: Callable[[AttemptResult, int, float], None] | None = None,
) -> tuple[AttemptResult, int]:
    """Call `attempt` until it is not retryable or attempts run out.

    Returns the final result (never `retry`: exhausted retries become `failed`) and how
    many calls were made.
    """
    for number in range(1, policy.max_attempts + 1):
        result = attempt()
        if result.verdict != "retry":
            return result, number
        if number == policy.max_attempts:
            break
        delay = next_delay(result, number, policy, rng)
        if on_retry is not None:
            on_retry(result, number, delay)
        sleep(delay)
    return (
        replace(
            result,
            verdict="failed",
            error=f"gave up after {policy.max_attempts} attempts: {result.error}",
        ),
        policy.max_attempts,
    )
