"""The Definitions load, and hold the assets, checks, sensors and jobs the UI should show."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from pipelines.definitions import defs
from tests.conftest import write_jsonl

EXPECTED_ASSETS = {
    "raw_events",
    "staging/stg_segment__events",
    "staging/stg_segment__identifies",
    "marts/dim_users",
    "marts/user_segments",
    "marts/kpi_daily",
    "marts/fct_onboarding_funnel",
    "marts/user_progress",
    "message_plan",
    "email_events",
    "user_progress_export",
}
EXPECTED_CHECKS = {
    "raw_events:ingested_files_counts_add_up",
    "raw_events:raw_events_unique_event_id",
    "marts/dim_users:unique_dim_users_user_id",
    "marts/user_segments:unique_user_segments_user_id",
    "message_plan:no_duplicate_sends",
    "message_plan:no_send_to_suppressed",
    "message_plan:no_send_to_holdout",
    "message_plan:every_row_resolved",
}
EXPECTED_SENSORS = {"landing_sensor", "send_sensor", "email_events_sensor"}
EXPECTED_JOBS = {"ingest_events", "send_messages", "plan_messages", "ingest_email_events"}


def test_definitions_expose_the_expected_objects() -> None:
    repository = defs.get_repository_def()
    graph = repository.asset_graph

    assets = {key.to_user_string() for key in graph.get_all_asset_keys()}
    checks = {key.to_user_string() for key in graph.asset_check_keys}
    sensors = {sensor.name for sensor in repository.sensor_defs}
    jobs = set(repository.job_names) - {"__ASSET_JOB"}

    assert EXPECTED_ASSETS <= assets
    assert EXPECTED_CHECKS <= checks
    assert EXPECTED_SENSORS <= sensors
    assert EXPECTED_JOBS <= jobs


def test_warehouse_assets_use_the_warehouse_pool() -> None:
    for key in ("raw_events", "marts/kpi_daily", "message_plan"):
        assert defs.get_assets_def(dg.AssetKey.from_user_string(key)).op.pool == "warehouse"


def test_lineage_reads_raw_events_to_staging_to_intermediate_to_marts() -> None:
    graph = defs.get_repository_def().asset_graph
    groups = {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert groups["raw_events"] == "ingest"
    assert {g for k, g in groups.items() if k.startswith("marts/")} == {"marts"}
    staging = dg.AssetKey.from_user_string("staging/stg_segment__events")
    assert dg.AssetKey("raw_events") in graph.get(staging).parent_keys
    marts = [k for k in graph.get_all_asset_keys() if k.path[0] == "marts"]
    assert marts
    ingest = {dg.AssetKey("raw_events"), dg.AssetKey("email_events")}
    for mart in marts:  # every mart descends from an ingest asset, through staging
        ancestors = dg.AssetSelection.assets(mart).upstream().resolve(graph)
        assert ingest & ancestors, mart
        assert any(k.path[0] == "staging" for k in ancestors), mart
    event_marts = {"dim_users", "user_segments", "kpi_daily", "fct_onboarding_funnel"}
    for mart in (m for m in marts if m.path[-1] in event_marts):
        ancestors = dg.AssetSelection.assets(mart).upstream().resolve(graph)
        assert dg.AssetKey("raw_events") in ancestors, mart
        assert any(k.path[0] == "intermediate" for k in ancestors), mart


def test_landing_sensor_requests_one_run_per_file(landing: Path) -> None:
    write_jsonl(
        landing / "a.jsonl",
        [{"type": "track", "event": "x", "userId": "u", "timestamp": "2026-11-01T00:00:00Z"}],
    )
    from pipelines.defs.ingest import landing_sensor as sensor

    with dg.instance_for_test() as instance:
        result = sensor(dg.build_sensor_context(instance=instance))
        again = sensor(dg.build_sensor_context(instance=instance, cursor=result.cursor))

    [request] = result.run_requests
    assert request.run_key.startswith(str(landing / "a.jsonl") + ":")
    assert request.run_config["ops"]["raw_events"]["config"]["paths"] == [str(landing / "a.jsonl")]
    assert not again.run_requests
    assert "no new or changed files" in again.skip_reason.skip_message


def test_raw_events_materializes_with_metadata_and_checks(landing: Path, data_dir: Path) -> None:
    write_jsonl(
        landing / "a.jsonl",
        [
            {
                "type": "track",
                "event": "Signed Up",
                "userId": "u-1",
                "messageId": "m1",
                "timestamp": "2026-11-01T00:00:00Z",
            },
            {
                "type": "track",
                "event": "Signed Up",
                "userId": "u-1",
                "messageId": "m1",
                "timestamp": "2026-11-01T00:00:00Z",
            },
            {"type": "alias", "userId": "u-1", "timestamp": "2026-11-01T00:00:00Z"},
        ],
    )
    from pipelines.defs.ingest import ingested_files_counts_add_up, raw_events_unique_event_id
    from pipelines.defs.resources import WarehouseResource

    result = dg.materialize(
        [
            defs.get_assets_def("raw_events"),
            ingested_files_counts_add_up,
            raw_events_unique_event_id,
        ],
        resources={"warehouse": WarehouseResource(data_dir=str(data_dir))},
    )

    assert result.success
    [materialization] = result.asset_materializations_for_node("raw_events")
    metadata = materialization.metadata
    assert (
        metadata["rows_loaded"].value,
        metadata["rows_rejected"].value,
        metadata["rows_duplicate"].value,
    ) == (1, 1, 1)
    assert "`unknown_type` | 1" in metadata["rejection_reasons"].value
    evaluations = result.get_asset_check_evaluations()
    assert {e.check_name for e in evaluations} == {
        "ingested_files_counts_add_up",
        "raw_events_unique_event_id",
    }
    assert all(e.passed for e in evaluations)
