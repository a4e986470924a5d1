"""send_messages (launched by send_sensor) and the re-planning job (run by a schedule)."""

import dagster as dg

from pipelines.defs.messaging.config import SendConfig, guardrails_from
from pipelines.defs.messaging.resources import EmailSenderResource
from pipelines.defs.resources import WAREHOUSE_POOL, WarehouseResource
from pipelines.defs.run_context import dagster_run_context
from pipelines.lib.messaging.report import send_summary
from pipelines.lib.steps import send_step


@dg.op(pool=WAREHOUSE_POOL, description="Send every planned ledger row, at most once each.")
def send_planned_messages(
    context: dg.OpExecutionContext,
    config: SendConfig,
    warehouse: WarehouseResource,
    email_sender: EmailSenderResource,
) -> None:
    run = dagster_run_context(context, guardrails_from(config))
    result = send_step(run, warehouse.connect, sender=email_sender.sender())
    report = result.report
    if result.stopped is not None:
        if report is not None:
            context.log.error(send_summary(report))
        raise dg.Failure(description=result.stopped)
    assert report is not None  # a send that did not stop has its report
    context.log.info(send_summary(report))
    if report.errors:
        context.log.warning(f"not sent, by reason: {dict(report.errors)}")


@dg.job(description="Deliver the planned messages (launched by send_sensor).")
def send_messages() -> None:
    send_planned_messages()


plan_messages_job = dg.define_asset_job(
    name="plan_messages",
    selection=dg.AssetSelection.assets("message_plan"),
    description="Re-evaluate time-based rules: plan what is due now.",
)


email_events_job = dg.define_asset_job(
    name="ingest_email_events",
    selection=dg.AssetSelection.assets("email_events"),
    description="Load new webhook files: suppressions and delivery confirmations.",
)
