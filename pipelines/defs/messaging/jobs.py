"""send_messages (launched by send_sensor) and the re-planning job (run by a schedule)."""

import dagster as dg

from pipelines.defs.messaging.resources import EmailSenderResource
from pipelines.defs.resources import WAREHOUSE_POOL, WarehouseResource
from pipelines.lib.clock import as_of
from pipelines.lib.messaging.gate import SendGate
from pipelines.lib.messaging.policy import Guardrails
from pipelines.lib.messaging.report import send_summary
from pipelines.lib.messaging.runtime import new_id
from pipelines.lib.messaging.send import SendHalted, send_planned
from pipelines.lib.settings import FLAGS_FILE, load_settings


class SendConfig(dg.Config):
    max_sends_per_run: int = Guardrails().max_sends_per_run


@dg.op(pool=WAREHOUSE_POOL, description="Send every planned ledger row, at most once each.")
def send_planned_messages(
    context: dg.OpExecutionContext,
    config: SendConfig,
    warehouse: WarehouseResource,
    email_sender: EmailSenderResource,
) -> None:
    sender = email_sender.sender()
    clock = as_of()
    with warehouse.connect() as con:
        try:
            report = send_planned(
                con,
                sender=sender,
                run_id=new_id("send", clock),
                max_sends_per_run=config.max_sends_per_run,
                gate=SendGate(FLAGS_FILE, load_settings().env),
                clock=clock,
            )
        except SendHalted as halted:
            context.log.error(send_summary(halted.report))
            raise dg.Failure(description=str(halted)) from None
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
