"""Sender settings per environment, and secrets kept out of output."""

from __future__ import annotations

import pytest

from pipelines.lib.ops.environment import (
    SENDER_SETTINGS,
    check_sender_environment,
    missing_settings,
    redact,
    required_settings,
    scrub_secrets,
)

FULL = {
    "SENDGRID_API_KEY": "SG.very-secret-key",
    "BIS_FROM_EMAIL": "hello@acme.test",
    "BIS_UNSUBSCRIBE_URL": "https://acme.test/unsubscribe",
    "BIS_POSTAL_ADDRESS": "Acme, 1 Road, Town",
}


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_staging_and_prod_need_every_sender_setting(env: str) -> None:
    assert required_settings(env, {}) == list(SENDER_SETTINGS)
    assert missing_settings(env, {}) == list(SENDER_SETTINGS)
    assert missing_settings(env, FULL) == []


def test_dev_with_outbox_needs_nothing_but_dev_with_sendgrid_does() -> None:
    assert required_settings("dev", {}) == []
    assert missing_settings("dev", {}) == []
    assert missing_settings("dev", {"BIS_EMAIL_SENDER": "sendgrid"}) == list(SENDER_SETTINGS)


def test_blank_values_count_as_missing() -> None:
    environ = {**FULL, "SENDGRID_API_KEY": "  ", "BIS_POSTAL_ADDRESS": ""}
    assert missing_settings("prod", environ) == ["SENDGRID_API_KEY", "BIS_POSTAL_ADDRESS"]


def test_check_names_every_missing_variable_in_one_message() -> None:
    environ = {"BIS_FROM_EMAIL": "hello@acme.test"}
    with pytest.raises(ValueError) as caught:
        check_sender_environment("prod", environ)
    message = str(caught.value)
    assert "\n" not in message
    for name in ("SENDGRID_API_KEY", "BIS_UNSUBSCRIBE_URL", "BIS_POSTAL_ADDRESS"):
        assert name in message
    assert "BIS_FROM_EMAIL" not in message
    check_sender_environment("prod", FULL)  # complete: no error
    check_sender_environment("dev", {})


def test_unknown_env_or_sender_is_refused() -> None:
    with pytest.raises(ValueError, match="BIS_ENV"):
        required_settings("prd", {})
    with pytest.raises(ValueError, match="BIS_EMAIL_SENDER"):
        required_settings("dev", {"BIS_EMAIL_SENDER": "smtp"})


@pytest.mark.parametrize(
    "name", ["SENDGRID_API_KEY", "CLIENT_SECRET", "GITHUB_TOKEN", "DB_PASSWORD", "api_key"]
)
def test_redact_hides_secrets(name: str) -> None:
    assert redact(name, "s3cr3t-value") == "<redacted>"
    assert "s3cr3t" not in redact(name, "s3cr3t-value")


def test_redact_shows_plain_values_and_unset() -> None:
    assert redact("BIS_FROM_EMAIL", "hello@acme.test") == "hello@acme.test"
    assert redact("SENDGRID_API_KEY", None) == "<not set>"
    assert redact("SENDGRID_API_KEY", " ") == "<not set>"


def test_scrub_removes_secret_values_from_any_line() -> None:
    lines = ["error: auth failed for SG.very-secret-key", "from hello@acme.test"]
    assert scrub_secrets(lines, FULL) == ["error: auth failed for <redacted>", lines[1]]
