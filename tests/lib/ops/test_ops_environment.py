"""Sender settings per environment, and secrets kept out of output."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.lib.ops.environment import (
    SENDER_SETTINGS,
    check_sender_environment,
    missing_settings,
    redact,
    required_settings,
    scrub_secrets,
)
from pipelines.lib.settings import Settings, load_settings

FULL = {
    "SENDGRID_API_KEY": "SG.very-secret-key",
    "BIS_FROM_EMAIL": "hello@acme.test",
    "BIS_UNSUBSCRIBE_URL": "https://acme.test/unsubscribe",
    "BIS_POSTAL_ADDRESS": "Acme, 1 Road, Town",
}


def _settings(tmp_path: Path, env: str, **variables: str) -> Settings:
    environ = {"BIS_ENV": env, "BIS_DATA_DIR": str(tmp_path), **variables}
    if env != "dev":
        environ["BIS_WAREHOUSE_URL"] = f"duckdb://{tmp_path / 'warehouse.duckdb'}"
    return load_settings(environ)


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_staging_and_prod_need_every_sender_setting(env: str, tmp_path: Path) -> None:
    assert required_settings(_settings(tmp_path, env)) == list(SENDER_SETTINGS)
    assert missing_settings(_settings(tmp_path, env)) == list(SENDER_SETTINGS)
    assert missing_settings(_settings(tmp_path, env, **FULL)) == []


def test_dev_with_outbox_needs_nothing_but_dev_with_sendgrid_does(tmp_path: Path) -> None:
    assert required_settings(_settings(tmp_path, "dev")) == []
    assert missing_settings(_settings(tmp_path, "dev")) == []
    sendgrid = _settings(tmp_path, "dev", BIS_EMAIL_SENDER="sendgrid")
    assert missing_settings(sendgrid) == list(SENDER_SETTINGS)


def test_blank_values_count_as_missing(tmp_path: Path) -> None:
    blanks = {**FULL, "SENDGRID_API_KEY": "  ", "BIS_POSTAL_ADDRESS": ""}
    assert missing_settings(_settings(tmp_path, "prod", **blanks)) == [
        "SENDGRID_API_KEY",
        "BIS_POSTAL_ADDRESS",
    ]


def test_check_names_every_missing_variable_in_one_message(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as caught:
        check_sender_environment(_settings(tmp_path, "prod", BIS_FROM_EMAIL="hello@acme.test"))
    message = str(caught.value)
    assert "\n" not in message
    for name in ("SENDGRID_API_KEY", "BIS_UNSUBSCRIBE_URL", "BIS_POSTAL_ADDRESS"):
        assert name in message
    assert "BIS_FROM_EMAIL" not in message
    check_sender_environment(_settings(tmp_path, "prod", **FULL))  # complete: no error
    check_sender_environment(_settings(tmp_path, "dev"))


def test_unknown_env_or_sender_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="BIS_ENV='prd'"):
        _settings(tmp_path, "prd")
    with pytest.raises(ValueError, match="BIS_EMAIL_SENDER='smtp'"):
        _settings(tmp_path, "dev", BIS_EMAIL_SENDER="smtp")


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


def test_scrub_removes_secret_values_from_any_line(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "prod", **FULL)
    lines = ["error: auth failed for SG.very-secret-key", "from hello@acme.test"]
    assert scrub_secrets(lines, settings.secrets()) == [
        "error: auth failed for <redacted>",
        lines[1],
    ]
