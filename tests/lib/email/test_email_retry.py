"""The retry rules on their own: classification, waits, bounded attempts."""

from __future__ import annotations

import http.client
import random
import socket
import urllib.error

import pytest

from pipelines.lib.email.retry import (
    AttemptResult,
    RetryPolicy,
    backoff_delay,
    classify_exception,
    classify_response,
    next_delay,
    run_with_retries,
)

NOW = 1_800_000_000.0


def test_accepted_answers_carry_the_message_id() -> None:
    result = classify_response(202, {"x-message-id": "abc"}, b"", NOW)

    assert (result.verdict, result.message_id, result.status) == ("accepted", "abc", 202)
    assert classify_response(200, {}, b"", NOW).verdict == "accepted"  # sandbox mode


def test_rate_limit_waits_until_the_reset() -> None:
    result = classify_response(429, {"X-RateLimit-Reset": str(int(NOW) + 7)}, b"", NOW)

    assert result.verdict == "retry"
    assert result.retry_after == pytest.approx(7)
    assert classify_response(429, {}, b"", NOW).retry_after is None
    past = classify_response(429, {"X-RateLimit-Reset": str(int(NOW) - 5)}, b"", NOW)
    assert past.retry_after is None  # already reset: fall back to backoff
    assert classify_response(429, {"Retry-After": "3"}, b"", NOW).retry_after == 3


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retried(status: int) -> None:
    assert classify_response(status, {}, b"oops", NOW).verdict == "retry"


@pytest.mark.parametrize("status", [400, 413, 422])
def test_other_client_errors_are_permanent_with_sendgrids_reason(status: int) -> None:
    body = b'{"errors":[{"message":"bad thing","field":"personalizations.0.to"}]}'

    result = classify_response(status, {}, body, NOW)

    assert result.verdict == "failed"
    assert result.error is not None
    assert result.error.startswith(f"HTTP {status}")
    assert "bad thing (field personalizations.0.to)" in result.error


@pytest.mark.parametrize("status", [401, 403, 404, 405, 407])
def test_refusals_of_the_account_halt_with_sendgrids_reason(status: int) -> None:
    body = b'{"errors":[{"message":"bad thing","field":"personalizations.0.to"}]}'

    result = classify_response(status, {}, body, NOW)

    # Not about a message: every other message would be refused alike (tests/lib/messaging/
    # test_account_faults.py covers what the send loop does with it).
    assert result.verdict == "halt"
    assert result.error is not None and result.error.startswith(f"HTTP {status}")


def test_error_text_is_bounded() -> None:
    result = classify_response(400, {}, b'{"errors":[{"message":"' + b"x" * 5000 + b'"}]}', NOW)

    assert result.error is not None and len(result.error) <= 500


def test_failures_before_the_request_was_sent_are_retried() -> None:
    refused = urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
    dns = urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    for exc in (refused, dns):
        result = classify_exception(exc)
        assert result.verdict == "retry"
        assert "could not reach" in (result.error or "")


@pytest.mark.parametrize(
    "exc",
    [
        TimeoutError("timed out"),
        http.client.RemoteDisconnected("Remote end closed connection without response"),
        ConnectionResetError(104, "Connection reset by peer"),
        http.client.IncompleteRead(b""),
    ],
)
def test_failures_after_the_request_was_sent_are_unknown(exc: BaseException) -> None:
    result = classify_exception(exc, timeout=10)

    assert result.verdict == "unknown"
    assert "not retried" in (result.error or "")


def test_backoff_is_exponential_full_jitter_and_capped() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=0.5, max_delay=4)
    rng = random.Random(7)

    for attempt, cap in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (8, 4.0)]:
        delays = [backoff_delay(attempt, policy, rng) for _ in range(200)]
        assert all(0 <= d <= cap for d in delays)
        assert max(delays) > cap * 0.8  # full jitter spans the whole range
        assert min(delays) < cap * 0.2


def test_a_rate_limit_wait_is_capped_by_max_delay() -> None:
    policy = RetryPolicy(max_delay=30)
    rng = random.Random(1)

    assert next_delay(AttemptResult("retry", retry_after=12), 1, policy, rng) == 12
    assert next_delay(AttemptResult("retry", retry_after=3600), 1, policy, rng) == 30


def script(*results: AttemptResult):  # type: ignore[no-untyped-def]
    remaining = list(results)
    calls: list[int] = []

    def attempt() -> AttemptResult:
        calls.append(1)
        return remaining.pop(0)

    return attempt, calls


def test_run_with_retries_stops_at_the_first_final_answer() -> None:
    attempt, calls = script(
        AttemptResult("retry", status=429, retry_after=2.0),
        AttemptResult("retry", status=500),
        AttemptResult("accepted", status=202, message_id="m"),
    )
    sleeps: list[float] = []

    result, attempts = run_with_retries(
        attempt, RetryPolicy(base_delay=0.5), sleep=sleeps.append, rng=random.Random(3)
    )

    assert (result.verdict, result.message_id, attempts, len(calls)) == ("accepted", "m", 3, 3)
    assert sleeps[0] == 2.0
    assert 0 <= sleeps[1] <= 1.0


def test_exhausted_retries_fail_with_the_last_reason() -> None:
    attempt, calls = script(*[AttemptResult("retry", status=503, error="HTTP 503")] * 3)
    sleeps: list[float] = []

    result, attempts = run_with_retries(
        attempt, RetryPolicy(max_attempts=3), sleep=sleeps.append, rng=random.Random(0)
    )

    assert result.verdict == "failed"
    assert result.error == "gave up after 3 attempts: HTTP 503"
    assert attempts == 3 == len(calls)
    assert len(sleeps) == 2  # no pointless wait after the last attempt


@pytest.mark.parametrize("verdict", ["unknown", "failed"])
def test_unknown_and_permanent_results_are_never_retried(verdict: str) -> None:
    attempt, calls = script(AttemptResult(verdict, error="x"))  # type: ignore[arg-type]

    result, attempts = run_with_retries(
        attempt, RetryPolicy(), sleep=pytest.fail, rng=random.Random(0)
    )

    assert (result.verdict, attempts, len(calls)) == (verdict, 1, 1)
