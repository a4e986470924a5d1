"""message_plan in Dagster: a Launchpad flag override applies to one run only, and each plan
materialization launches exactly one send run."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from pipelines.definitions import defs
from pipelines.defs.messaging.assets import message_plan
from pipelines.defs.messaging.sensors import send_sensor
from pipelines.defs.resources import WarehouseResource
from pipelines.lib.warehouse import open_warehouse
from tests.lib.messaging.conftest import MARTS_DDL, T, add_user


@pytest.fixture
def marts(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BIS_AS_OF", T.isoformat())
    with open_warehouse(data_dir / "warehouse.duckdb") as con:
        con.execute(MARTS_DDL)
        for i in range(20):
            add_user(con, f"u{i:02d}", steps=1, segment="stalled")
    return data_dir


def run_requests(evaluation: object) -> list[dg.RunRequest]:
    """An asset sensor called directly may return a request, None, or a generator of them."""
    if evaluation is None:
        return []
    items = [evaluation] if isinstance(evaluation, dg.RunRequest) else list(evaluation)
    return [item for item in items if isinstance(item, dg.RunRequest)]


def planned(result: dg.ExecuteInProcessResult) -> int:
    [materialization] = result.asset_materializations_for_node("message_plan")
    return materialization.metadata["planned"].value


def test_launchpad_override_applies_to_one_run(marts: Path) -> None:
    resources = {"warehouse": WarehouseResource()}
    kill = {"ops": {"message_plan": {"config": {"flags": {"messaging": {"state": "off"}}}}}}

    overridden = dg.materialize([message_plan], run_config=kill, resources=resources)
    default = dg.materialize([message_plan], resources=resources)

    assert overridden.success and default.success
    assert planned(overridden) == 0
    [materialization] = overridden.asset_materializations_for_node("message_plan")
    assert materialization.metadata["flag_overrides"].value == {
        "messaging": {"state": "off", "percent": None}
    }
    assert planned(default) > 0


def test_send_sensor_sends_each_plan_once(marts: Path) -> None:
    with dg.instance_for_test() as instance:
        dg.materialize(
            [message_plan], resources={"warehouse": WarehouseResource()}, instance=instance
        )
        context = dg.build_sensor_context(instance=instance, definitions=defs)
        requests = run_requests(send_sensor(context))
        again = run_requests(
            send_sensor(
                dg.build_sensor_context(instance=instance, definitions=defs, cursor=context.cursor)
            )
        )
    assert len(requests) == 1 and requests[0].run_key.startswith("message_plan:")
    assert again == []


def test_email_events_sensor_runs_on_new_webhook_files(data_dir: Path) -> None:
    from pipelines.defs.messaging.sensors import email_events_sensor

    folder = data_dir / "landing" / "email_events" / "20261124"
    folder.mkdir(parents=True)
    (folder / ".pending.jsonl.tmp").write_text("{}\n")  # a delivery still being written
    (folder / "batch.jsonl").write_text('{"sg_event_id": "e1"}\n')
    with dg.instance_for_test() as instance:
        first = email_events_sensor(dg.build_sensor_context(instance=instance))
        again = email_events_sensor(dg.build_sensor_context(instance=instance, cursor=first.cursor))
    [request] = first.run_requests
    assert request.run_key.startswith(str(folder / "batch.jsonl") + ":")
    assert not again.run_requests and "no new or changed files" in again.skip_reason.skip_message
