"""Messaging: plan, send, re-plan on a schedule, and the ledger's invariants."""

import dagster as dg

from pipelines.defs.messaging.assets import message_plan
from pipelines.defs.messaging.checks import ledger_checks
from pipelines.defs.messaging.jobs import plan_messages_job, send_messages
from pipelines.defs.messaging.resources import email_sender_resource
from pipelines.defs.messaging.schedules import replan_schedule
from pipelines.defs.messaging.sensors import send_sensor

defs = dg.Definitions(
    assets=[message_plan],
    asset_checks=ledger_checks,
    jobs=[send_messages, plan_messages_job],
    sensors=[send_sensor],
    schedules=[replan_schedule],
    resources={"email_sender": email_sender_resource()},
)
