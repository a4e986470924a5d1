"""How the pipeline invokes dbt: the clock as an environment variable, unit tests left out."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import pytest

from pipelines.lib.dbt import SKIP_UNIT_TESTS, clock_env, dbt_args, dbt_env
from pipelines.lib.settings import load_settings

T = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_clock_env_sets_bis_as_of_only_inside(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIS_AS_OF", "2026-01-01T00:00:00Z")
    with clock_env(T):
        assert os.environ["BIS_AS_OF"] == "2026-11-24T12:00:00+00:00"
    assert os.environ["BIS_AS_OF"] == "2026-01-01T00:00:00Z"
    monkeypatch.delenv("BIS_AS_OF")
    with clock_env(T):
        assert os.environ["BIS_AS_OF"] == "2026-11-24T12:00:00+00:00"
    assert "BIS_AS_OF" not in os.environ


def test_the_clock_is_not_a_var_so_dbt_can_reuse_its_parse() -> None:
    settings = load_settings()
    args = dbt_args("build", settings, *SKIP_UNIT_TESTS)
    assert "as_of" not in json.loads(args[args.index("--vars") + 1])
    assert dbt_env(settings, T)["BIS_AS_OF"] == "2026-11-24T12:00:00+00:00"
    assert args[-2:] == ["--exclude-resource-type", "unit_test"]
