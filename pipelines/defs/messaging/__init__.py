"""Messaging: plan, send, re-plan on a schedule, and the ledger's invariants."""

import dagster as dg

from pipelines.defs.messaging.assets import email_events, message_plan
from pipelines.defs.messaging.checks import ledger_checks
from pipelines.defs.messaging.jobs import email_events_job, plan_messages_job, send_messages
from pipelines.defs.messaging.resources import email_sender_resource
from pipelines.defs.messaging.schedules import replan_schedule
from pipelines.defs.messaging.sensors import email_events_sensor, send_sensor

defs = dg.Definitions(
    assets=[message_plan, email_events],
    asset_checks=ledger_checks,
    jobs=[send_messages, plan_messages_job, email_events_job],
    sensors=[send_sensor, email_events_sensor],
    schedules=[replan_schedule],
    resources={"email_sender": email_sender_resource()},
)
