"""Time-based rules ("48 h after the last step") need re-evaluation without new events."""

import dagster as dg

from pipelines.defs.messaging.jobs import plan_messages_job

replan_schedule = dg.ScheduleDefinition(
    name="replan_every_15_minutes",
    job=plan_messages_job,
    cron_schedule="*/15 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Re-plan so steps whose delay has just passed go out without new events.",
)
