"""The Dagster resources carry their settings: each set variable through dg.EnvVar."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from pipelines.defs.messaging.resources import EmailSenderResource, email_sender_resource
from pipelines.defs.resources import WarehouseResource, default_resources
from pipelines.lib.email import OutboxSender

KEY = "SG.resource-key-never-shown"


def test_set_variables_become_env_vars_and_unset_ones_stay_empty(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SENDGRID_API_KEY", KEY)
    monkeypatch.setenv("BIS_FROM_EMAIL", "hello@acme.test")
    monkeypatch.delenv("SENDGRID_HOST", raising=False)
    resource = email_sender_resource()
    assert isinstance(resource.sendgrid_api_key, dg.EnvVar)
    assert (resource.sendgrid_api_key, resource.from_email) == (
        "SENDGRID_API_KEY",
        "BIS_FROM_EMAIL",
    )
    assert resource.sendgrid_host == ""
    assert KEY not in repr(resource)


def test_the_sender_resource_builds_from_its_fields(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BIS_EMAIL_SENDER", raising=False)
    resource = EmailSenderResource(from_email="team@acme.test", app_url="https://acme.test")
    settings = resource.settings()
    assert settings.from_email == "team@acme.test" and settings.app_url == "https://acme.test"
    assert isinstance(resource.sender(), OutboxSender)
    with pytest.raises(ValueError, match="BIS_EMAIL_SENDER='smtp'"):
        EmailSenderResource(email_sender="smtp").settings()


def test_the_warehouse_resource_follows_the_settings(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert WarehouseResource().url.path == data_dir.resolve() / "warehouse.duckdb"
    other = tmp_path / "elsewhere.duckdb"
    assert WarehouseResource(warehouse_url=f"duckdb://{other}").url.path == other.resolve()
    with pytest.raises(ValueError, match="BIS_WAREHOUSE_URL is not set"):
        _ = WarehouseResource(env="prod").url
    monkeypatch.setenv("BIS_WAREHOUSE_URL", f"duckdb://{other}")
    resource = default_resources()["warehouse"]
    assert isinstance(resource, WarehouseResource)
    assert isinstance(resource.warehouse_url, dg.EnvVar)
    assert resource.warehouse_url == "BIS_WAREHOUSE_URL"
