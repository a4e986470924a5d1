"""`bis run`: the stages of the main job, in the contract's order, in process.

ingest → dbt build → message_plan → send_messages → dashboard. Each stage is a plain
function in STAGES.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from pipelines.lib.clock import wall_clock
from pipelines.lib.dbt import run_dbt_build
from pipelines.lib.faults import machine_fault
from pipelines.lib.ingest import IngestSummary, ingest_landing_folder
from pipelines.lib.ingest.report import summary_line
from pipelines.lib.kpis import kpi_lines, latest_kpis
from pipelines.lib.messaging.ledger_clock import check_pipeline_clock
from pipelines.lib.settings import FLAGS_FILE, Settings
from pipelines.lib.warehouse import open_warehouse

if TYPE_CHECKING:
    from pipelines.lib.messaging.plan import PlanResult
    from pipelines.lib.messaging.runtime import PlanInputs
    from pipelines.lib.messaging.send import SendReport


@dataclass
class RunReport:
    as_of: datetime
    ingest: IngestSummary | None = None
    lines: list[str] = field(default_factory=list)  # one summary line per stage
    kpis: dict[str, float | None] = field(default_factory=dict)
    plan: PlanResult | None = None
    sent: SendReport | None = None
    failed: bool = False


def ingest_stage(settings: Settings, as_of: datetime, report: RunReport) -> None:
    with open_warehouse(settings.warehouse_path) as con:
        report.ingest = ingest_landing_folder(
            con, settings.landing_events_dir, reference_time=as_of
        )
    report.lines.append(f"ingest: {summary_line(report.ingest)}")
    for error in report.ingest.errors:
        report.lines.append(f"ingest: FAILED {error}")
        report.failed = True
    for code, count in report.ingest.rejections.most_common():
        report.lines.append(f"ingest:   rejected {count:>6} {code}")


def dbt_stage(
    settings: Settings, as_of: datetime, report: RunReport, dbt_args: tuple[str, ...] = ()
) -> None:
    """`dbt build`, everything unless `dbt_args` narrows it (the simulation's daily runs)."""
    result = run_dbt_build(settings, as_of, *dbt_args)
    counts = ", ".join(f"{status} {n}" for status, n in sorted(result.counts.items()))
    report.lines.append(f"dbt build: {'ok' if result.success else 'FAILED'} ({counts})")
    if not result.success:
        report.failed = True
        report.lines.extend(f"dbt:   {failure}" for failure in result.failures[:20])
        return
    with open_warehouse(settings.warehouse_path, read_only=True) as con:
        latest = latest_kpis(con)
    if latest is not None:
        day, values = latest
        report.kpis = values
        report.lines.append(f"KPIs as of {day}:")
        report.lines.extend(f"  {line}" for line in kpi_lines(values))


def email_events_stage(settings: Settings, as_of: datetime, report: RunReport) -> None:
    from pipelines.lib.email_events import apply_email_events, load_email_events

    with open_warehouse(settings.warehouse_path) as con:
        loaded = load_email_events(con, settings.landing_email_events_dir)
        applied = apply_email_events(con)
    report.lines.append(
        f"email events: {loaded.loaded} loaded, {loaded.duplicate} duplicate,"
        f" {loaded.rejected} rejected; suppressions added {applied.suppressions_added},"
        f" unknown sends confirmed {applied.confirmed_unknown}"
    )
    report.lines.extend(f"email events: skipped {path}: {why}" for path, why in loaded.skipped)


def plan_stage(
    settings: Settings, as_of: datetime, report: RunReport, inputs: PlanInputs | None = None
) -> None:
    """Plan with the committed sequences and flags, or with `inputs` (the simulation)."""
    from pipelines.lib.messaging.plan import plan_messages
    from pipelines.lib.messaging.report import plan_summary
    from pipelines.lib.messaging.runtime import load_plan_inputs, new_id

    inputs = inputs or load_plan_inputs()
    with open_warehouse(settings.warehouse_path) as con:
        result = plan_messages(
            con,
            sequences=inputs.sequences,
            flags=inputs.flags,
            env=settings.env,
            as_of=as_of,
            plan_id=new_id("plan", as_of),
            allow_future_clock=settings.allow_future_clock,
        )
    report.plan = result
    report.lines.append(plan_summary(result))


def send_stage(settings: Settings, as_of: datetime, report: RunReport) -> None:
    from pipelines.lib.messaging.gate import SendGate
    from pipelines.lib.messaging.policy import Guardrails
    from pipelines.lib.messaging.report import send_summary
    from pipelines.lib.messaging.runtime import build_sender, new_id
    from pipelines.lib.messaging.send import SendHalted, send_planned

    sender = build_sender(settings)
    with open_warehouse(settings.warehouse_path) as con:
        try:
            sent = send_planned(
                con,
                sender=sender,
                run_id=new_id("send", as_of),
                max_sends_per_run=Guardrails().max_sends_per_run,
                gate=SendGate(FLAGS_FILE, settings.env),
                clock=as_of,
            )
        except SendHalted as halted:
            if machine_fault(halted) is not None:
                raise  # disk full or read-only outbox: one line; the unsent rows stay planned
            report.sent = halted.report
            report.lines.append(send_summary(halted.report))
            report.lines.append(f"send: STOPPED {halted}")
            report.failed = True
            return
    report.sent = sent
    report.lines.append(send_summary(sent))
    if sender.provider == "outbox":
        report.lines.append(f"outbox: {settings.outbox_dir}")


def dashboard_stage(settings: Settings, as_of: datetime, report: RunReport) -> None:
    from pipelines.lib.reporting import build_dashboard

    with open_warehouse(settings.warehouse_path) as con:
        result = build_dashboard(
            con, env=settings.env, out_path=settings.reports_dir / "dashboard.html", as_of=as_of
        )
    report.lines.append(f"dashboard: {result.path}")
    if result.kpis:
        report.lines.extend(f"  {line}" for line in kpi_lines(result.kpis))


Stage = Callable[[Settings, datetime, RunReport], None]
STAGES: list[tuple[str, Stage]] = [
    ("ingest", ingest_stage),
    ("dbt", dbt_stage),
    ("email_events", email_events_stage),
    ("plan", plan_stage),
    ("send", send_stage),
    ("dashboard", dashboard_stage),
]


def check_clock(settings: Settings, as_of: datetime) -> None:
    """Refuse a clock behind the ledger's (or, outside dev, far ahead of the machine's)
    before any stage runs: ingest judges timestamps against it too, so a wrong clock must
    not get as far as rejecting events."""
    if not settings.warehouse_path.exists():
        return  # a first run: no ledger yet, nothing to go back behind
    with open_warehouse(settings.warehouse_path) as con:
        check_pipeline_clock(
            con,
            as_of,
            env=settings.env,
            wall_now=wall_clock(),
            allow_future=settings.allow_future_clock,
        )


def _run_stages(settings: Settings, as_of: datetime, stages: list[Stage]) -> RunReport:
    check_clock(settings, as_of)
    report = RunReport(as_of=as_of)
    for stage in stages:
        stage(settings, as_of, report)
        if report.failed:
            break
    return report


def plan_and_send(settings: Settings, as_of: datetime) -> RunReport:
    """`bis send`: plan and send once, on the marts as they are."""
    return _run_stages(settings, as_of, [email_events_stage, plan_stage, send_stage])


def run_pipeline(settings: Settings, as_of: datetime) -> RunReport:
    """Run every stage in order; a stage that fails stops the ones after it."""
    return _run_stages(settings, as_of, [stage for _name, stage in STAGES])
