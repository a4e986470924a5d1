"""An incremental run after new (and late) events gives the same tables as a full refresh."""

from __future__ import annotations

AS_OF = "2026-11-24T12:00:00+00:00"
FIRST_RUN_AS_OF = "2026-11-16T12:00:00+00:00"  # when the first load was processed
COMPARED = (
    "marts.dim_users",
    "marts.user_segments",
    "marts.kpi_daily",
    "marts.fct_onboarding_funnel",
    "marts.user_progress",
    "intermediate.int_identity_daily_activity",
    "intermediate.int_identity_first_links",
    "intermediate.int_identity_milestones",
    "intermediate.int_identity_identifies",
    "intermediate.int_identity_map",
    "intermediate.int_user_daily_activity",
    "intermediate.int_user_onboarding_steps",
    "intermediate.int_user_latest_traits",
    "intermediate.int_user_lifecycle",
)
INCREMENTAL_ROLLUPS = (
    "int_identity_daily_activity",
    "int_identity_first_links",
    "int_identity_milestones",
    "int_identity_identifies",
)


def test_incremental_run_equals_full_refresh(empty_dbt_warehouse, handmade_events):
    warehouse = empty_dbt_warehouse
    first_load = [event for event in handmade_events if event["load"] == 1]
    second_load = [event for event in handmade_events if event["load"] == 2]
    # The second load brings events that happened before the first load's newest event (late
    # data), a row ingested just before the first load's high-water mark (a straggler, caught
    # only by the lookback) and the signup that links anonymous events of the first load.
    newest_first = max(event["occurred_at"] for event in first_load)
    assert any(event["occurred_at"] < newest_first for event in second_load)
    assert any(
        event["ingested_at"] < max(e["ingested_at"] for e in first_load) for event in second_load
    )

    warehouse.load_events(first_load)
    warehouse.dbt("run", as_of=FIRST_RUN_AS_OF)
    rollup_after_first_run = warehouse.rows("intermediate.int_identity_daily_activity")
    assert rollup_after_first_run

    warehouse.load_events(second_load)
    incremental = warehouse.dbt("run")
    for rollup in INCREMENTAL_ROLLUPS:
        (rollup_run,) = [r for r in incremental if r["unique_id"] == f"model.bis.{rollup}"]
        assert "high_water_mark" in rollup_run["compiled_code"], f"{rollup} was not incremental"
    after_incremental = {relation: warehouse.rows(relation) for relation in COMPARED}

    warehouse.dbt("run", "--full-refresh")
    after_full_refresh = {relation: warehouse.rows(relation) for relation in COMPARED}

    for relation in COMPARED:
        assert after_incremental[relation], f"{relation} is empty"
        assert after_incremental[relation] == after_full_refresh[relation], relation
    # and both equal the hand-checked build: the headline KPIs of test_handmade_dataset
    (last,) = warehouse.query("select * from marts.kpi_daily order by date desc limit 1")
    assert (last["converted_users"], last["mature_signups"]) == (7, 10)
    assert (last["converted_users"], last["started_in_window_users"]) == (7, 8)
    assert (last["inactive_users"], last["signed_up_users"]) == (3, 14)
