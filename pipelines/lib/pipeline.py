"""`bis run`, `bis send` and a `bis simulate` day: the steps in the contract's order.

ingest → ingest checks → dbt build → email events → plan → send → ledger checks →
dashboard. Each step is one function in `pipelines/lib/steps/` (the Dagster assets, ops
and checks call the same ones); this module only decides their order, when a failure stops
the rest, and collects their lines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from pipelines.lib.clock import wall_clock
from pipelines.lib.ingest.checks import INGEST_INVARIANTS
from pipelines.lib.messaging.checks import LEDGER_INVARIANTS
from pipelines.lib.messaging.ledger_clock import check_pipeline_clock
from pipelines.lib.messaging.plan import PlanResult
from pipelines.lib.messaging.policy import Guardrails
from pipelines.lib.messaging.runtime import PlanInputs
from pipelines.lib.messaging.send import SendReport
from pipelines.lib.published import publish_step
from pipelines.lib.settings import Settings
from pipelines.lib.steps import (
    Opener,
    PlanStepResult,
    RunContext,
    SendStepResult,
    StepResult,
    build_run_context,
    checks_step,
    dashboard_step,
    dbt_step,
    email_events_step,
    ingest_step,
    plan_step,
    send_step,
    warehouse_opener,
)
from pipelines.lib.warehouse import open_warehouse


@dataclass(frozen=True)
class Stage:
    name: str
    body: Callable[[RunContext, Opener], StepResult]
    # A failure stops the stages after it. A non-blocking one (the ledger checks) lets the
    # run finish, and the run still fails at the end.
    blocking: bool = True


@dataclass
class RunReport:
    run: RunContext
    results: dict[str, StepResult] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)  # every step's summary lines, in order
    failed: bool = False

    @property
    def as_of(self) -> datetime:
        return self.run.as_of

    @property
    def plan(self) -> PlanResult | None:
        result = self.results.get("plan")
        return result.plan if isinstance(result, PlanStepResult) else None

    @property
    def sent(self) -> SendReport | None:
        result = self.results.get("send")
        return result.report if isinstance(result, SendStepResult) else None

    def record(self, stage: Stage, result: StepResult) -> bool:
        """Keep a step's result and lines; whether the stages after it may run."""
        self.results[stage.name] = result
        self.lines.extend(result.lines())
        if result.failed:
            self.failed = True
            return not stage.blocking
        return True


def _ingest_checks(_run: RunContext, connect: Opener) -> StepResult:
    return checks_step(connect, "raw events", INGEST_INVARIANTS)


def _ledger_checks(_run: RunContext, connect: Opener) -> StepResult:
    return checks_step(connect, "ledger", LEDGER_INVARIANTS)


def _dbt(dbt_args: tuple[str, ...] = ()) -> Stage:
    return Stage("dbt", lambda run, _connect: dbt_step(run, dbt_args))


def _plan(inputs: PlanInputs | None = None) -> Stage:
    return Stage("plan", lambda run, connect: plan_step(run, connect, inputs=inputs))


INGEST = Stage("ingest", ingest_step)
INGEST_CHECKS = Stage(
    "ingest_checks", _ingest_checks, blocking=any(i.blocking for i in INGEST_INVARIANTS)
)
EMAIL_EVENTS = Stage("email_events", email_events_step)
SEND = Stage("send", send_step)
LEDGER_CHECKS = Stage(
    "ledger_checks", _ledger_checks, blocking=any(i.blocking for i in LEDGER_INVARIANTS)
)
DASHBOARD = Stage("dashboard", dashboard_step)
# Readers' copy (pipelines/lib/published.py): the new marts at once, the ledger at the end.
PUBLISH_MARTS = Stage("publish_marts", publish_step)
PUBLISH = Stage("publish", publish_step)

# `bis run`: the contract's main job (docs/architecture.md §3).
RUN_STAGES = [
    INGEST,
    INGEST_CHECKS,
    _dbt(),
    PUBLISH_MARTS,
    EMAIL_EVENTS,
    _plan(),
    SEND,
    LEDGER_CHECKS,
    DASHBOARD,
    PUBLISH,
]
# `bis send`: plan and send once, on the marts as they are.
SEND_STAGES = [EMAIL_EVENTS, _plan(), SEND, LEDGER_CHECKS, PUBLISH]


def simulation_stages(
    inputs: PlanInputs, dbt_args: tuple[str, ...], *, dashboard: bool
) -> list[Stage]:
    """A simulated day: webhook events before dbt (the marts then see the day's replies),
    only the simulated sequence planned; the dashboard on the settling run only."""
    stages = [INGEST, INGEST_CHECKS, EMAIL_EVENTS, _dbt(dbt_args), _plan(inputs), SEND]
    return [*stages, LEDGER_CHECKS, *([DASHBOARD] if dashboard else [])]


def run_stages(run: RunContext, stages: list[Stage], connect: Opener | None = None) -> RunReport:
    """Run `stages` in order on the run's warehouse (or `connect`)."""
    connect = connect or warehouse_opener(run.settings)
    report = RunReport(run)
    for stage in stages:
        if not report.record(stage, stage.body(run, connect)):
            break
    return report


def check_clock(settings: Settings, as_of: datetime) -> None:
    """Refuse a clock behind the ledger's (or, outside dev, far ahead of the machine's)
    before any stage runs: ingest judges timestamps against it too, so a wrong clock must
    not get as far as rejecting events."""
    url = settings.warehouse
    if url.is_duckdb and not url.path.exists():
        return  # a first run: no ledger yet, nothing to go back behind
    with open_warehouse(url) as con:
        check_pipeline_clock(
            con,
            as_of,
            env=settings.env,
            wall_now=wall_clock(),
            allow_future=settings.allow_future_clock,
        )


def _checked_run(
    settings: Settings, as_of: datetime, guardrails: Guardrails | None, stages: list[Stage]
) -> RunReport:
    run = build_run_context(settings, as_of, guardrails=guardrails)
    check_clock(settings, run.as_of)
    return run_stages(run, stages)


def run_pipeline(
    settings: Settings, as_of: datetime, guardrails: Guardrails | None = None
) -> RunReport:
    """`bis run`: every stage in order; a blocking failure stops the ones after it."""
    return _checked_run(settings, as_of, guardrails, RUN_STAGES)


def plan_and_send(
    settings: Settings, as_of: datetime, guardrails: Guardrails | None = None
) -> RunReport:
    """`bis send`: plan and send once, on the marts as they are."""
    return _checked_run(settings, as_of, guardrails, SEND_STAGES)
