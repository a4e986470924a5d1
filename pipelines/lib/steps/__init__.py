"""One body per pipeline step, shared by `bis run`/`bis send`/`bis simulate` and Dagster.

Each step is a plain function of the run's context (settings, clock, ids, guardrails) and a
warehouse opener, returning a result object: counts, whether it failed, and its summary
lines. `pipelines/lib/pipeline.py` sequences them for the command line; the Dagster assets,
ops and asset checks call the same functions and turn the results into metadata.
"""

from pipelines.lib.steps.checks import CheckOutcome, ChecksResult, check_invariant, checks_step
from pipelines.lib.steps.context import (
    Opener,
    RunContext,
    StepResult,
    build_run_context,
    warehouse_opener,
)
from pipelines.lib.steps.dbt_build import DbtStepResult, dbt_step
from pipelines.lib.steps.email_events import EmailEventsResult, email_events_step
from pipelines.lib.steps.ingest import IngestResult, ingest_step
from pipelines.lib.steps.plan import PlanStepResult, plan_step
from pipelines.lib.steps.reporting import DashboardStepResult, dashboard_step
from pipelines.lib.steps.send import SendStepResult, send_step

__all__ = [
    "CheckOutcome",
    "ChecksResult",
    "DashboardStepResult",
    "DbtStepResult",
    "EmailEventsResult",
    "IngestResult",
    "Opener",
    "PlanStepResult",
    "RunContext",
    "SendStepResult",
    "StepResult",
    "build_run_context",
    "check_invariant",
    "checks_step",
    "dashboard_step",
    "dbt_step",
    "email_events_step",
    "ingest_step",
    "plan_step",
    "send_step",
    "warehouse_opener",
]
