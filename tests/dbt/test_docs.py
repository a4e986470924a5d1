"""`make docs` is only useful if the marts are documented: every mart states its grain and
describes every column, and every mart Python reads has an enforced contract."""

from __future__ import annotations

import json

from pipelines.defs.dbt.resources import dbt_project

MARTS = {
    "dim_users",
    "user_segments",
    "kpi_daily",
    "fct_onboarding_funnel",
    "user_progress",
    "fct_message_performance",
    "fct_sequence_experiments",
}


def _mart_nodes() -> dict[str, dict]:
    manifest = json.loads(dbt_project.manifest_path.read_text())
    return {
        node["name"]: node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["fqn"][1] == "marts"
    }


def test_every_mart_states_its_grain_and_describes_every_column() -> None:
    marts = _mart_nodes()
    assert set(marts) >= MARTS
    for name, node in marts.items():
        assert "grain" in node["description"].lower(), name
        assert node["columns"], name
        undocumented = [c for c, spec in node["columns"].items() if not spec["description"]]
        assert undocumented == [], name


def test_marts_read_by_python_have_enforced_contracts() -> None:
    marts = _mart_nodes()
    for name in MARTS:
        assert marts[name]["config"]["contract"]["enforced"] is True, name
