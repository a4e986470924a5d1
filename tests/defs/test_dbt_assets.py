"""The whole asset graph materializes in process: dbt tests arrive as passing asset checks,
models carry row counts, and kpi_daily carries the KPI table beside baseline and target."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines.definitions import defs
from pipelines.lib.sample_data import generate_sample

AS_OF = "2026-11-24T06:00:00Z"


@pytest.mark.slow
def test_graph_materializes_with_checks_and_kpi_table(
    landing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIS_AS_OF", AS_OF)
    generate_sample(
        out_dir=landing,
        end_at=datetime(2026, 11, 24, tzinfo=UTC),
        users=250,
        days=30,
        seed=3,
        progress=False,
    )

    result = defs.resolve_implicit_global_asset_job_def().execute_in_process()

    assert result.success
    materializations = {
        event.asset_key.to_user_string(): event.materialization
        for event in result.get_asset_materialization_events()
    }
    assert {
        "raw_events",
        "staging/stg_segment__events",
        "marts/dim_users",
        "marts/kpi_daily",
        "marts/user_segments",
    } <= set(materializations)
    assert materializations["marts/dim_users"].metadata["dagster/row_count"].value == 250

    kpi = materializations["marts/kpi_daily"].metadata
    table = kpi["headline_kpis"].value
    assert "| Onboarding conversion |" in table and "| 27.8% | 65.0% |" in table
    assert "| Onboarding completion |" in table and "| 48.0% | 75.0% |" in table
    assert 0 <= kpi["onboarding_conversion_rate"].value <= 1
    assert kpi["kpi_date"].value == "2026-11-24"

    checks = result.get_asset_check_evaluations()
    assert len(checks) > 50
    assert all(check.passed for check in checks), [c.check_name for c in checks if not c.passed]
