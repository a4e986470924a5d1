"""The Dagster assets, ops and checks run the same step bodies as `bis run`: the same check
verdicts and reasons, run ids built the same way, the same guardrails."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from pipelines.defs.messaging.assets import message_plan
from pipelines.defs.messaging.checks import ledger_checks
from pipelines.defs.messaging.jobs import send_messages
from pipelines.defs.messaging.resources import email_sender_resource
from pipelines.defs.resources import WarehouseResource
from pipelines.lib.messaging.checks import LEDGER_INVARIANTS
from pipelines.lib.settings import load_settings
from pipelines.lib.steps import checks_step, warehouse_opener
from pipelines.lib.warehouse import open_warehouse
from tests.lib.messaging.conftest import MARTS_DDL, T, add_user
from tests.lib.test_pipeline_steps import add_sent_row

STAMP = "20261124T150000Z"  # T as run ids spell it


@pytest.fixture
def marts(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BIS_AS_OF", T.isoformat())
    with open_warehouse(data_dir / "warehouse.duckdb") as con:
        con.execute(MARTS_DDL)
        for i in range(3):
            add_user(con, f"u{i}", steps=1, segment="stalled")
    return data_dir / "warehouse.duckdb"


def resources() -> dict[str, dg.ConfigurableResource]:
    return {"warehouse": WarehouseResource(), "email_sender": email_sender_resource()}


def test_a_ledger_check_fails_in_dagster_with_the_reason_bis_run_prints(marts: Path) -> None:
    with open_warehouse(marts) as con:
        add_sent_row(con, "dup-a", "ghost")
        add_sent_row(con, "dup-b", "ghost")
    result = dg.materialize([message_plan, *ledger_checks], resources=resources())
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    bis_run = checks_step(warehouse_opener(load_settings()), "ledger", LEDGER_INVARIANTS)

    assert set(evaluations) == {outcome.name for outcome in bis_run.outcomes}
    for outcome in bis_run.outcomes:
        evaluation = evaluations[outcome.name]
        assert evaluation.passed == outcome.passed, outcome.name
        assert evaluation.metadata["violations"].value == outcome.violations
    duplicate = evaluations["no_duplicate_sends"]
    assert not duplicate.passed
    assert duplicate.description == next(
        o.why() for o in bis_run.outcomes if o.name == "no_duplicate_sends"
    )


def test_plan_and_send_ids_are_built_from_the_clock_and_the_dagster_run(marts: Path) -> None:
    planned = dg.materialize([message_plan], resources=resources())
    sent = send_messages.execute_in_process(resources=resources())
    assert planned.success and sent.success

    [materialization] = planned.asset_materializations_for_node("message_plan")
    plan_id = materialization.metadata["plan_id"].value
    assert plan_id == f"plan-{STAMP}-{planned.run_id[:8]}"
    with open_warehouse(marts) as con:
        rows = con.execute(
            "select distinct plan_id, send_run_id, status from messaging.sends"
        ).fetchall()
    assert rows == [(plan_id, f"send-{STAMP}-{sent.run_id[:8]}", "sent")]


def test_the_send_ceiling_is_run_config_in_dagster(marts: Path) -> None:
    dg.materialize([message_plan], resources=resources())
    config = {"ops": {"send_planned_messages": {"config": {"max_sends_per_run": 2}}}}
    result = send_messages.execute_in_process(
        resources=resources(), run_config=config, raise_on_error=False
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.user_failure_data.description
    assert message.startswith("3 messages are planned but max_sends_per_run is 2")


def test_caps_are_plan_run_config_in_dagster(marts: Path) -> None:
    config = {"ops": {"message_plan": {"config": {"cap_per_day": 0}}}}
    result = dg.materialize([message_plan], resources=resources(), run_config=config)
    [materialization] = result.asset_materializations_for_node("message_plan")
    assert materialization.metadata["planned"].value == 0
    assert materialization.metadata["capped"].value == 3


def test_one_send_per_enrollment_passes_every_ledger_check(marts: Path) -> None:
    # One earlier send per enrollment is the normal ledger: every check passes.
    with open_warehouse(marts) as con:
        add_sent_row(con, "once", "ghost")
    result = dg.materialize([message_plan, *ledger_checks], resources=resources())
    assert all(e.passed for e in result.get_asset_check_evaluations())
