"""The settings: every variable parsed once, bad values named, secrets never shown."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines.lib.clock import as_of
from pipelines.lib.settings import (
    PROJECT_ROOT,
    Settings,
    SettingsError,
    load_settings,
    read_dotenv,
    subprocess_environ,
    temporary_environ,
)

KEY = "SG.do-not-show-me-42"
PASSWORD = "pg-pass-do-not-show"


def test_defaults_in_dev(tmp_path: Path) -> None:
    settings = load_settings({"BIS_DATA_DIR": str(tmp_path)})
    assert settings.env == "dev"
    assert settings.data_dir == tmp_path.resolve()
    assert settings.warehouse.is_duckdb
    assert settings.warehouse_path == tmp_path.resolve() / "warehouse.duckdb"
    assert settings.sender_kind == "outbox"
    assert settings.as_of is None
    assert settings.warehouse_wait_seconds == 600
    assert settings.duckdb_memory_limit == "3GB"
    assert settings.sendgrid_api_key is None
    assert not settings.use_sandbox
    assert settings.landing_events_dir == tmp_path.resolve() / "landing" / "events"


def test_every_variable_is_parsed(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "BIS_ENV": "staging",
            "BIS_DATA_DIR": str(tmp_path),
            "BIS_WAREHOUSE_URL": f"duckdb://{tmp_path / 'w.duckdb'}",
            "BIS_AS_OF": "2026-11-24T12:00:00Z",
            "BIS_ALLOW_FUTURE_CLOCK": "yes",
            "BIS_DUCKDB_MEMORY_LIMIT": "512MiB",
            "BIS_WAREHOUSE_WAIT": "2.5",
            "BIS_EMAIL_SENDER": "outbox",
            "BIS_FROM_EMAIL": "hello@acme.test",
            "BIS_FROM_NAME": "Acme",
            "BIS_UNSUBSCRIBE_URL": "https://acme.test/u",
            "BIS_POSTAL_ADDRESS": "1 Road",
            "BIS_APP_URL": "https://app.acme.test",
            "SENDGRID_API_KEY": KEY,
            "SENDGRID_HOST": "http://127.0.0.1:9",
            "SENDGRID_SANDBOX": "0",
            "SENDGRID_WEBHOOK_PUBLIC_KEY": "MFkw-public",
            "DAGSTER_HOME": str(tmp_path / "home"),
        }
    )
    assert settings.warehouse_path == tmp_path.resolve() / "w.duckdb"
    assert settings.as_of == datetime(2026, 11, 24, 12, tzinfo=UTC)
    assert as_of(None, settings) == settings.as_of
    assert settings.allow_future_clock
    assert (settings.duckdb_memory_limit, settings.warehouse_wait_seconds) == ("512MiB", 2.5)
    assert settings.sender_kind == "outbox"
    assert settings.from_name == "Acme" and settings.app_url == "https://app.acme.test"
    assert settings.sendgrid_api_key is not None
    assert settings.sendgrid_api_key.get_secret_value() == KEY
    assert settings.sendgrid_host == "http://127.0.0.1:9"
    assert settings.use_sandbox is False  # staging's default, turned off
    assert settings.sendgrid_webhook_public_key == "MFkw-public"
    assert settings.dagster_home == (tmp_path / "home").resolve()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("BIS_ENV", "production"),
        ("BIS_ALLOW_FUTURE_CLOCK", "maybe"),
        ("BIS_AS_OF", "yesterday"),
        ("BIS_WAREHOUSE_WAIT", "-1"),
        ("BIS_WAREHOUSE_WAIT", "soon"),
        ("BIS_DUCKDB_MEMORY_LIMIT", "lots"),
        ("BIS_EMAIL_SENDER", "smtp"),
        ("BIS_UNSUBSCRIBE_URL", "mailto:x@acme.test"),
        ("BIS_APP_URL", "app.acme.test"),
        ("SENDGRID_HOST", "api.sendgrid.com"),
        ("SENDGRID_SANDBOX", "sometimes"),
        ("BIS_WAREHOUSE_URL", "mysql://h/db"),
    ],
)
def test_a_bad_value_is_named_with_its_variable(name: str, value: str) -> None:
    with pytest.raises(ValueError) as caught:
        load_settings({name: value})
    assert f"{name}={value!r}" in str(caught.value)


def test_secrets_never_show(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "BIS_ENV": "prod",
            "BIS_WAREHOUSE_URL": f"postgresql://bis:{PASSWORD}@db.internal:5432/bis",
            "SENDGRID_API_KEY": KEY,
        }
    )
    for text in (repr(settings), str(settings), repr(settings.sendgrid_api_key)):
        assert KEY not in text and PASSWORD not in text
    assert "**********" in repr(settings.sendgrid_api_key)
    assert sorted(settings.secrets()) == sorted([KEY, PASSWORD])


def test_a_bad_secret_is_named_but_not_shown() -> None:
    with pytest.raises(ValueError) as caught:
        load_settings({"BIS_WAREHOUSE_URL": f"postgresql://bis:{PASSWORD}@db.internal:x/bis"})
    assert "BIS_WAREHOUSE_URL" in str(caught.value) and PASSWORD not in str(caught.value)


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_outside_dev_the_warehouse_url_is_required(env: str, tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="BIS_WAREHOUSE_URL is not set") as caught:
        load_settings({"BIS_ENV": env, "BIS_DATA_DIR": str(tmp_path)})
    assert f"BIS_ENV={env}" in str(caught.value)


def test_a_postgres_warehouse_has_no_file() -> None:
    settings = load_settings(
        {"BIS_ENV": "prod", "BIS_WAREHOUSE_URL": "postgresql://bis@db.internal/bis"}
    )
    assert settings.warehouse.is_postgres
    with pytest.raises(SettingsError, match="PostgreSQL"):
        _ = settings.warehouse_path


def test_settings_built_in_code_default_to_the_data_dir_warehouse(tmp_path: Path) -> None:
    settings = Settings(env="dev", data_dir=tmp_path)
    assert settings.warehouse_path == tmp_path.resolve() / "warehouse.duckdb"
    assert settings.sender_variables() == {}


def test_overrides_win_over_the_environment(tmp_path: Path) -> None:
    settings = load_settings(
        {"BIS_DATA_DIR": "/nowhere"}, overrides={"BIS_DATA_DIR": str(tmp_path)}
    )
    assert settings.data_dir == tmp_path.resolve()


def test_dotenv_fills_only_what_is_unset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text(
        "# a comment\nBIS_FROM_NAME=From Dotenv\nBIS_APP_URL=https://dotenv.test\n"
        'BIS_POSTAL_ADDRESS="1 Quoted Road"\n'
    )
    monkeypatch.setenv("BIS_APP_URL", "https://already-set.test")
    for name in ("BIS_FROM_NAME", "BIS_POSTAL_ADDRESS"):
        # Set, then unset: monkeypatch then removes what read_dotenv sets at teardown.
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    loaded = read_dotenv(tmp_path)
    assert loaded == {"BIS_FROM_NAME": "From Dotenv", "BIS_POSTAL_ADDRESS": "1 Quoted Road"}
    settings = load_settings()
    assert settings.from_name == "From Dotenv"
    assert settings.app_url == "https://already-set.test"
    assert read_dotenv(tmp_path / "missing") == {}


def test_environments_for_children(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIS_AS_OF", "2026-11-24T00:00:00Z")
    child = subprocess_environ({"BIS_ENV": "dev"}, without=("BIS_AS_OF",))
    assert child["BIS_ENV"] == "dev" and "BIS_AS_OF" not in child
    monkeypatch.delenv("BIS_AS_OF")
    with temporary_environ({"BIS_AS_OF": "2026-01-01T00:00:00Z"}):
        assert as_of() == datetime(2026, 1, 1, tzinfo=UTC)
    assert "BIS_AS_OF" not in subprocess_environ()


# Tests may read the environment; the code under pipelines/ and bench/ may not.
_READS_ENVIRONMENT = re.compile(r"\bos\.environ\b|\bgetenv\b|\bfrom os import\b.*\benviron")


def test_only_the_settings_module_reads_the_environment() -> None:
    allowed = {PROJECT_ROOT / "pipelines" / "lib" / "settings.py"}
    offenders = [
        f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}"
        for folder in ("pipelines", "bench")
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py"))
        if path not in allowed
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if _READS_ENVIRONMENT.search(line)
    ]
    assert offenders == []


def test_the_example_env_file_is_valid_settings(tmp_path: Path) -> None:
    from dotenv import dotenv_values

    values = dotenv_values(PROJECT_ROOT / ".env.example")
    settings = load_settings({k: v for k, v in values.items() if v is not None})
    assert settings.env == "dev" and settings.from_email == "hello@example.com"
