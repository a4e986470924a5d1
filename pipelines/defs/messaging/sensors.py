"""send_sensor: every new message_plan materialization launches one send_messages run."""

import dagster as dg

from pipelines.defs.messaging.assets import message_plan
from pipelines.defs.messaging.jobs import email_events_job, send_messages
from pipelines.lib.ingest.watch import find_changed_files
from pipelines.lib.settings import load_settings


@dg.asset_sensor(
    asset_key=message_plan.key,
    job=send_messages,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sends what each new plan decided; run_key = the plan id.",
)
def send_sensor(context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry):
    # The plan's id (in messaging.plans and on every ledger row it decided) is unique and
    # stable, so a re-evaluated tick never launches a second send for the same plan.
    materialization = asset_event.asset_materialization
    plan_id = materialization.metadata.get("plan_id") if materialization else None
    key = plan_id.value if plan_id is not None else asset_event.run_id
    return dg.RunRequest(
        run_key=f"message_plan:{key}",
        tags={"bis/plan_id": str(key), "bis/plan_run_id": asset_event.run_id},
    )


@dg.sensor(
    job=email_events_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Watches $BIS_DATA_DIR/landing/email_events; run_key = path:sha256.",
)
def email_events_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    folder = load_settings().landing_email_events_dir
    result = find_changed_files(folder, context.cursor)
    if not result.changed:
        return dg.SensorResult(skip_reason=result.skip_reason(folder), cursor=result.cursor)
    # One run loads every new file; the newest run key stands for the whole batch.
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=result.changed[-1].run_key)],
        cursor=result.cursor,
    )
