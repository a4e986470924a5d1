"""`bis simulate`: a closed loop of synthetic users and the real pipeline, day by day.

Each simulated day: new users sign up; the pipeline runs at that day's clock (ingest → dbt
models → plan → send to the outbox); simulated users respond to the emails that actually
reached the outbox (see responses.py) with events that land in the next day's file, and
SendGrid-style delivery events go to the webhook landing folder. After the last day, a
settling run (a few days later, no new users) ingests the remaining responses and runs the
full `dbt build` with tests, so fct_sequence_experiments measures the lift the simulation
put in, and the dashboard shows it, labelled as a simulation.

Only the simulated sequence is planned, so its holdout is a clean experiment: another
sequence's email cannot move its users.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from pipelines.lib import pipeline
from pipelines.lib.atomic_files import atomic_write_text
from pipelines.lib.engine.url import WarehouseUrl, parse_warehouse_url
from pipelines.lib.messaging.report import decision_counts, status_counts
from pipelines.lib.messaging.runtime import PlanInputs, load_plan_inputs
from pipelines.lib.reporting.queries import fetch
from pipelines.lib.settings import Settings
from pipelines.lib.simulation import record
from pipelines.lib.simulation.events import SimulatedEvent, signup_events, simulated_user_id
from pipelines.lib.simulation.responses import ResponseModel, received_send_ids, user_rng
from pipelines.lib.steps import build_run_context
from pipelines.lib.warehouse import open_warehouse

BANNER = "SIMULATION: synthetic users and responses, not real results"
DEFAULT_SEQUENCE = "onboarding_momentum"
BASELINE_CONVERSION = 0.278  # the product's onboarding conversion today
RUN_HOUR_UTC = 12
SETTLE_DAYS = 4  # responses arrive within ~3 days of the email
# The daily runs build only the models the planner (and the KPI line) reads, without tests;
# the settling run at the end builds everything with tests.
_DAILY_DBT_ARGS = (
    "--select",
    "+dim_users",
    "+user_segments",
    "+user_progress",
    "+kpi_daily",
    "--exclude-resource-type",
    "test",
    "unit_test",
)


@dataclass(frozen=True)
class SimulationConfig:
    days: int
    true_lift: float
    users_per_day: int = 500
    base_rate: float = BASELINE_CONVERSION
    sequence_id: str = DEFAULT_SEQUENCE
    seed: int = 7
    start: datetime | None = None  # day 1's clock; default: `days + SETTLE_DAYS` before now

    def __post_init__(self) -> None:
        if self.days < 1 or self.users_per_day < 1:
            raise ValueError("--days and --users-per-day must be at least 1")
        if not 0.0 <= self.base_rate <= 1.0:
            raise ValueError(f"--base-rate must be within 0-1, got {self.base_rate}")
        if not -self.base_rate <= self.true_lift <= 1.0 - self.base_rate:
            raise ValueError(
                f"--true-lift {self.true_lift} would put the treatment conversion outside 0-1"
                f" (base rate {self.base_rate})"
            )


@dataclass
class SimulationResult:
    data_dir: Path
    config: SimulationConfig
    lines: list[str] = field(default_factory=list)
    experiment: dict | None = None  # fct_sequence_experiments row of the simulated sequence
    truth: dict[str, dict[str, int]] = field(default_factory=dict)
    dashboard: Path | None = None
    failed: bool = False

    @property
    def covers_true_lift(self) -> bool | None:
        if not self.experiment or self.experiment.get("lift_ci_lower") is None:
            return None
        lower, upper = self.experiment["lift_ci_lower"], self.experiment["lift_ci_upper"]
        return lower <= self.config.true_lift <= upper


def default_start(now: datetime, days: int) -> datetime:
    day = (now - timedelta(days=days + SETTLE_DAYS)).date()
    return datetime(day.year, day.month, day.day, RUN_HOUR_UTC, tzinfo=UTC)


def _write_lines(path: Path, lines: list[str]) -> None:
    """Atomically, so the landing scan never sees half a file (its temp name is hidden)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "".join(lines))


class _Landing:
    """Events waiting for the day whose clock has passed them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.events: list[SimulatedEvent] = []
        self.webhook: list[tuple[datetime, dict]] = []

    def flush(self, day: int, clock: datetime) -> tuple[int, int]:
        due = sorted((e for e in self.events if e.at < clock), key=lambda e: e.at)
        self.events = [e for e in self.events if e.at >= clock]
        hooks = sorted((h for h in self.webhook if h[0] < clock), key=lambda h: h[0])
        self.webhook = [h for h in self.webhook if h[0] >= clock]
        if due:
            _write_lines(
                self.settings.landing_events_dir / f"simulated_day{day:03d}.jsonl",
                [e.line for e in due],
            )
        if hooks:
            _write_lines(
                self.settings.landing_email_events_dir / f"simulated_day{day:03d}.jsonl",
                [json.dumps(event, separators=(",", ":")) + "\n" for _at, event in hooks],
            )
        return len(due), len(hooks)


def _signups(config: SimulationConfig, day: int, clock: datetime) -> list[SimulatedEvent]:
    """`users_per_day` users who signed up during the 24 hours before the day's run."""
    events: list[SimulatedEvent] = []
    for number in range(config.users_per_day):
        user_id = simulated_user_id(config.seed, day, number)
        rng = user_rng(config.seed, user_id, "signup")
        signed_up_at = clock - timedelta(seconds=rng.randint(3600, 24 * 3600))
        events += signup_events(rng, user_id, signed_up_at)
    return events


def simulation_warehouse(url_text: str | None, settings: Settings) -> WarehouseUrl | None:
    """`bis simulate --warehouse-url`: a server database for the simulation (None: a DuckDB
    file in its folder). Never the configured warehouse: synthetic users must not reach it."""
    if not url_text:
        return None
    url = parse_warehouse_url(url_text)
    if _place(url) == _place(settings.warehouse):
        raise ValueError(
            f"--warehouse-url {url.display()} is the configured warehouse (BIS_WAREHOUSE_URL);"
            " the simulation needs a database of its own"
        )
    return url


def _place(url: WarehouseUrl) -> tuple:
    """Where a warehouse is, whoever logs in to it."""
    return (url.engine, url.path, url.host, url.port, url.database)


def run_simulation(
    data_dir: Path,
    config: SimulationConfig,
    *,
    now: datetime,
    reset: bool = False,
    warehouse: WarehouseUrl | None = None,
) -> SimulationResult:
    """Run the closed loop in `data_dir` (a fresh or earlier simulation folder only), on its
    own DuckDB file there, or on `warehouse`: a server database that is empty or holds an
    earlier simulation (docs/architecture.md §13)."""
    inputs = load_plan_inputs()
    sequences = [s for s in inputs.sequences if s.id == config.sequence_id]
    if not sequences:
        known = ", ".join(sorted(s.id for s in inputs.sequences))
        raise ValueError(f"unknown sequence {config.sequence_id!r}; expected one of {known}")
    if warehouse is not None:
        if not warehouse.is_postgres:  # a DuckDB simulation keeps its file in its folder
            raise ValueError(
                f"--warehouse-url {warehouse.display()}: expected a postgresql:// URL"
                " (on DuckDB the simulation's warehouse is a file in its folder)"
            )
        record.prepare_server_warehouse(warehouse, reset=reset, dry_run=True)
    record.prepare_data_dir(data_dir, reset=reset)
    if warehouse is not None:
        record.prepare_server_warehouse(warehouse, reset=reset)
    # Always dev: the outbox, never SendGrid.
    settings = Settings(env="dev", data_dir=data_dir, warehouse=warehouse)
    only_simulated = PlanInputs(sequences=sequences, flags=inputs.flags)
    start = config.start or default_start(now, config.days)
    result = SimulationResult(data_dir, config, lines=[BANNER])
    result.lines.append(
        f"sequence {config.sequence_id}: {config.days} day(s) x {config.users_per_day} new"
        f" users, base conversion {config.base_rate:.1%}, true lift {config.true_lift:+.1%},"
        f" seed {config.seed}, days from {start:%Y-%m-%d}"
    )
    run_id = f"sim-{uuid.uuid4().hex[:12]}"
    with open_warehouse(settings.warehouse) as con:
        record.create_tables(con)
        record.record_run(
            con,
            run_id=run_id,
            sequence_id=config.sequence_id,
            days=config.days,
            users_per_day=config.users_per_day,
            base_rate=config.base_rate,
            true_lift=config.true_lift,
            seed=config.seed,
            started_at=start,
        )
    model = ResponseModel(
        sequence_id=config.sequence_id,
        base_rate=config.base_rate,
        true_lift=config.true_lift,
        seed=config.seed,
    )
    landing = _Landing(settings)
    for day in range(1, config.days + 1):
        clock = start + timedelta(days=day - 1)
        landing.events += _signups(config, day, clock)
        _run_day(settings, model, landing, only_simulated, day, clock, result)
        if result.failed:
            return result
    final_clock = start + timedelta(days=config.days - 1 + SETTLE_DAYS)
    _run_day(
        settings,
        model,
        landing,
        only_simulated,
        config.days + 1,
        final_clock,
        result,
        settling=True,
    )
    with open_warehouse(settings.warehouse) as con:
        record.finish_run(con, run_id, final_clock)
        result.truth = record.ground_truth(con)
        result.experiment = _experiment_row(con, config.sequence_id)
    result.lines += summary_lines(result)
    return result


def _run_day(
    settings: Settings,
    model: ResponseModel,
    landing: _Landing,
    inputs: PlanInputs,
    day: int,
    clock: datetime,
    result: SimulationResult,
    *,
    settling: bool = False,
) -> None:
    """One simulated day: land what is due, run the pipeline, let users respond.

    Daily runs build only the models the planner reads; the settling run (no new users)
    builds everything with dbt's tests and writes the dashboard.
    """
    events, hooks = landing.flush(day, clock)
    stages = pipeline.simulation_stages(
        inputs, () if settling else _DAILY_DBT_ARGS, dashboard=settling
    )
    report = pipeline.run_stages(build_run_context(settings, clock), stages)
    result.failed = report.failed
    if "dashboard" in report.results:
        result.dashboard = settings.reports_dir / "dashboard.html"
    if settling:
        result.lines.append(
            f"settling run ({clock:%Y-%m-%d %H:%M}Z, no new users): landed {events} events"
            f" and {hooks} webhook events; full dbt build with tests"
        )
    elif report.failed:
        result.lines.append(f"day {day} ({clock:%Y-%m-%d}): FAILED")
    else:
        result.lines.append(
            f"day {day} ({clock:%Y-%m-%d}): landed {events} events, {hooks} webhook events;"
            f" {_plan_line(report)}; {_respond(settings, model, landing, clock)}"
        )
        return
    result.lines += [f"  {line}" for line in report.lines]


def _respond(settings: Settings, model: ResponseModel, landing: _Landing, clock: datetime) -> str:
    with open_warehouse(settings.warehouse) as con:
        responses = model.respond(con, received_send_ids(settings.outbox_dir), clock)
        record.record_outcomes(con, model.sequence_id, responses.outcomes)
    landing.events += responses.events
    landing.webhook += responses.webhook
    converted = sum(o.converted for o in responses.outcomes)
    return f"{len(responses.outcomes)} users decided ({converted} will convert)"


def _plan_line(report: pipeline.RunReport) -> str:
    """ "planned …, held_out …; sent …, failed …" from the day's plan and send."""
    assert report.plan is not None and report.sent is not None
    return f"{decision_counts(report.plan)}; {status_counts(report.sent)}"


def _experiment_row(con: duckdb.DuckDBPyConnection, sequence_id: str) -> dict | None:
    rows = fetch(
        con, "select * from marts.fct_sequence_experiments where sequence_id = ?", [sequence_id]
    )
    return rows[0] if rows else None


def summary_lines(result: SimulationResult) -> list[str]:
    """The experiment as the marts measured it, next to the lift the simulation put in."""
    lines = [BANNER]
    truth = result.truth
    for variant in ("treatment", "holdout"):
        t = truth.get(variant, {"users": 0, "converted": 0, "received_email": 0})
        lines.append(
            f"  drawn  {variant:<9} users {t['users']:>6}  converted {t['converted']:>6}"
            f"  received email {t['received_email']:>6}"
        )
    row = result.experiment
    if row is None:
        lines.append("  fct_sequence_experiments has no row for the sequence (no enrollments)")
        return lines
    lines += [
        f"  measured treatment {row['treatment_converted']}/{row['treatment_users']}"
        f" = {_pct(row['treatment_conversion_rate'])}, holdout {row['holdout_converted']}"
        f"/{row['holdout_users']} = {_pct(row['holdout_conversion_rate'])}",
        f"  lift {_pct(row['absolute_lift'], signed=True)} (95% CI {_pct(row['lift_ci_lower'])}"
        f" to {_pct(row['lift_ci_upper'])}, {row['ci_method']}), p = {_num(row['p_value'])},"
        f" {'significant' if row['is_significant'] else 'not significant'};"
        f" SRM p = {_num(row['srm_p_value'])}{' (FLAGGED)' if row['srm_flag'] else ''}",
        f"  true lift {result.config.true_lift:+.1%}:"
        f" {'inside' if result.covers_true_lift else 'OUTSIDE'} the interval",
    ]
    if result.dashboard:
        lines.append(f"  dashboard (labelled as a simulation): {result.dashboard}")
    return lines


def _pct(value: float | None, *, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value:+.1%}" if signed else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"
