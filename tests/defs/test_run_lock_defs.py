"""Dagster ops take the same run lock as `bis run`: a Dagster run and a `bis run` never write
the warehouse at once (the `warehouse` pool only serialises Dagster runs among themselves)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from pipelines.definitions import defs
from tests.support.holders import holding


@pytest.fixture
def bis_run_holding(data_dir: Path) -> Iterator[int]:
    """Another process holds the data dir's run lock, as a `bis run` does; yields its pid."""
    with holding(data_dir) as holder:
        yield holder.pid


@pytest.mark.parametrize(
    "asset",
    [
        dg.AssetKey("raw_events"),  # through WarehouseResource.connect
        dg.AssetKey(["marts", "dim_users"]),  # the dbt_models asset, before dbt starts
    ],
)
def test_an_op_waits_for_a_bis_run_and_then_names_it(
    asset: dg.AssetKey, bis_run_holding: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIS_WAREHOUSE_WAIT", "0.3")
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(asset_selection=[asset], raise_on_error=False)
    assert not result.success
    failures = [
        event.step_failure_data.error for event in result.all_events if event.is_step_failure
    ]
    assert len(failures) == 1, failures
    cause = failures[0].cause  # the op's own exception, under Dagster's wrapper
    assert cause is not None and cause.cls_name == "WarehouseBusyError"
    assert cause.message.startswith(
        "pipelines.lib.runlock.WarehouseBusyError: warehouse busy:"
        " `bis run --as-of 2026-11-24T09:30:00Z`"
        f" (pid {bis_run_holding}, started "
    )
