"""The `bis` command: sample data, the main job, and operations (see `bis --help`)."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path

from pipelines.lib.clock import as_of as pipeline_clock
from pipelines.lib.faults import about, one_line
from pipelines.lib.messaging.policy import (
    GUARDRAIL_FIELDS,
    GUARDRAIL_HELP,
    Guardrails,
    guardrails_with,
)
from pipelines.lib.runlock import waiting
from pipelines.lib.settings import (
    FLAGS_FILE,
    SEQUENCES_DIR,
    Settings,
    load_settings,
    read_dotenv,
)

FORMATS = ("jsonl", "jsonl.gz", "parquet", "csv")


def _generate(args: argparse.Namespace) -> int:
    from pipelines.lib.sample_data import generate_sample

    settings = load_settings()
    clock = pipeline_clock(args.as_of, settings)
    # Anchored to the day, so the same seed on the same day writes byte-identical files.
    end_at = datetime(clock.year, clock.month, clock.day, tzinfo=UTC)
    out_dir = Path(args.out) if args.out else settings.landing_events_dir
    with about(out_dir):  # name the folder in a write error that names no file
        result = generate_sample(
            out_dir=out_dir,
            end_at=end_at,
            users=args.users,
            days=args.days,
            seed=args.seed,
            fmt=args.format,
            bad_lines=args.bad_lines,
            progress=sys.stderr.isatty(),
        )
    for path in result.files:
        print(f"wrote {path}")
    print(
        f"{result.users} users, {result.events} events ({result.duplicates} re-sent duplicates),"
        f" {sum(result.bad_records.values())} malformed records, ending {end_at:%Y-%m-%d}"
    )
    return 0


def _clock_settings(args: argparse.Namespace) -> Settings:
    """Settings, with `--allow-future-clock` applied."""
    settings = load_settings()
    if getattr(args, "allow_future_clock", False):
        settings = dataclasses.replace(settings, allow_future_clock=True)
    return settings


def _exclusive(settings: Settings, args: argparse.Namespace) -> AbstractContextManager[None]:
    """The data dir's run lock for the whole command, so its stages and dbt run back to back
    with no other writer in between; a second command waits (`--wait`) for the first."""
    from pipelines.lib.runlock import Holder, run_lock

    def tell(holder: Holder) -> None:
        if sys.stderr.isatty():  # a person is watching; logs get only the outcome
            print(f"bis {args.command}: waiting for {holder.describe()}", file=sys.stderr)

    if args.command == "send" and settings.warehouse.is_postgres:
        # A server takes several senders at once: claims lock their rows, and the stages
        # that must not overlap serialize on the server (docs/architecture.md §16).
        return contextlib.nullcontext()
    return run_lock(settings.data_dir, f"bis {args.command}", on_wait=tell)


def _run(args: argparse.Namespace) -> int:
    from pipelines.lib.pipeline import run_pipeline

    settings = _clock_settings(args)
    clock = pipeline_clock(args.as_of, settings)
    header = (
        f"bis run: as_of {clock:%Y-%m-%dT%H:%M:%SZ}, env {settings.env},"
        f" warehouse {settings.warehouse}"
    )
    with _exclusive(settings, args):
        report = run_pipeline(settings, clock, _guardrails(args))
    # Printed after the run: a run that cannot start or meets a fault says one line only.
    for line in [header, *report.lines]:
        print(line)
    return 1 if report.failed else 0


def _guardrails(args: argparse.Namespace) -> Guardrails:
    """The contract's guardrails, with the ones given on the command line."""
    return guardrails_with({name: getattr(args, name) for name in GUARDRAIL_FIELDS})


def _send(args: argparse.Namespace) -> int:
    from pipelines.lib.pipeline import plan_and_send

    settings = _clock_settings(args)
    clock = pipeline_clock(args.as_of, settings)
    with _exclusive(settings, args):
        report = plan_and_send(settings, clock, _guardrails(args))
    for line in report.lines:
        print(line)
    return 1 if report.failed else 0


def _sequences_check(args: argparse.Namespace) -> int:
    from pipelines.lib.dbt import DBT_PROJECT_DIR
    from pipelines.lib.flags import load_flags
    from pipelines.lib.sequences import SEGMENTS, check_sequences, known_columns

    folder = Path(args.folder) if args.folder else SEQUENCES_DIR
    flags = load_flags(Path(args.flags) if args.flags else FLAGS_FILE)
    problems = check_sequences(
        folder,
        flag_keys=set(flags.flags),
        columns=known_columns(DBT_PROJECT_DIR),
        segments=set(SEGMENTS),
    )
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) in {folder}", file=sys.stderr)
        return 1
    print(f"sequences OK: {folder}")
    return 0


def _preview(args: argparse.Namespace) -> int:
    from pipelines.lib.messaging.preview import UnknownUserError, preview_user
    from pipelines.lib.messaging.runtime import load_plan_inputs
    from pipelines.lib.published import open_scratch

    settings = load_settings()
    with open_scratch(settings) as con:  # the published copy: never waits for a run
        try:
            lines = preview_user(
                con,
                args.user_id,
                load_plan_inputs(),
                env=settings.env,
                as_of=pipeline_clock(args.as_of, settings),
            )
        except UnknownUserError as exc:
            print(f"bis preview: {exc}", file=sys.stderr)
            return 1
    print("\n".join(lines))
    return 0


def _webhook_serve(args: argparse.Namespace) -> int:
    from pipelines.lib.webhook import serve

    settings = load_settings()
    serve(
        args.host,
        args.port,
        env=settings.env,
        landing_dir=settings.landing_email_events_dir,
        public_key=settings.sendgrid_webhook_public_key,
    )
    return 0


def _flags_list(args: argparse.Namespace) -> int:
    from pipelines.lib.flags import FlagError
    from pipelines.lib.ops import flags_list
    from pipelines.lib.published import reader_target

    settings = load_settings()
    try:
        lines = flags_list(FLAGS_FILE, env_filter=args.env, warehouse=reader_target(settings))
    except FlagError as exc:
        print(f"bis flags list: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


def _flags_set(args: argparse.Namespace) -> int:
    from pipelines.lib.ops import flags_set
    from pipelines.lib.published import reader_target

    settings = load_settings()
    code, lines = flags_set(
        FLAGS_FILE,
        args.key,
        args.state,
        args.percent,
        args.env or settings.env,
        force=args.force,
        warehouse=reader_target(settings),  # the published copy on DuckDB
    )
    print("\n".join(lines), file=sys.stderr if code else sys.stdout)
    return code


def _status(args: argparse.Namespace) -> int:
    from pipelines.lib.ops import scrub_secrets, status_report
    from pipelines.lib.settings import secret_values

    try:
        settings = load_settings()
    except ValueError as exc:
        # A bad variable blocks sending like any other FAIL; its value may be a pasted key.
        print(scrub_secrets([f"FAIL config: {exc}"], secret_values())[0])
        return 1
    code, lines = status_report(settings, dagster_home=settings.dagster_home)
    print("\n".join(lines))
    return code


def _user_metrics(args: argparse.Namespace) -> int:
    import json

    from pipelines.lib.published import open_reader
    from pipelines.lib.user_metrics import UnknownUserError, format_metrics, user_metrics

    settings = load_settings()
    with open_reader(settings) as con:
        try:
            metrics = user_metrics(con, args.user_id, settings)
        except UnknownUserError as exc:
            print(f"bis user-metrics: {exc}", file=sys.stderr)
            return 1
    print(json.dumps(metrics, indent=2) if args.json else "\n".join(format_metrics(metrics)))
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from pipelines.lib.simulation import SimulationConfig, run_simulation, simulation_warehouse

    settings = load_settings()
    data_dir = Path(args.data_dir).resolve() if args.data_dir else settings.data_dir / "simulation"
    config = SimulationConfig(
        days=args.days,
        true_lift=args.true_lift,
        users_per_day=args.users_per_day,
        base_rate=args.base_rate,
        sequence_id=args.sequence,
        seed=args.seed,
        start=pipeline_clock(args.start) if args.start else None,
    )
    warehouse = simulation_warehouse(args.warehouse_url, settings)
    result = run_simulation(
        data_dir,
        config,
        now=pipeline_clock(None, settings),
        reset=args.reset,
        warehouse=warehouse,
    )
    # Printed after the run, as `bis run` does: a fault of the machine says one line only.
    where = f"its warehouse {warehouse.display()}; " if warehouse else "its own warehouse, "
    print(f"bis simulate: {data_dir} ({where}landing folders and outbox)")
    print("\n".join(result.lines))
    return 1 if result.failed else 0


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"{text!r} must be zero or more seconds")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bis", description="Behavioral Intelligence System: lifecycle messaging pipeline."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    generate = commands.add_parser("generate", help="write realistic sample events")
    generate.add_argument("--users", type=int, default=5000)
    generate.add_argument("--days", type=int, default=60)
    generate.add_argument("--seed", type=int, default=7)
    generate.add_argument("--format", choices=FORMATS, default="jsonl")
    generate.add_argument("--out", help="folder (default: $BIS_DATA_DIR/landing/events)")
    generate.add_argument(
        "--bad-lines", type=int, default=0, metavar="K", help="mix in K malformed records"
    )
    generate.add_argument("--as-of", help="end of the sample (default: the pipeline clock)")
    generate.set_defaults(handler=_generate)

    run = commands.add_parser("run", help="ingest → dbt → plan → send → dashboard")
    send = commands.add_parser("send", help="plan and send once, on the marts as they are")
    for command in (run, send):
        command.add_argument(
            "--as-of", help="the pipeline clock, ISO 8601 (default: $BIS_AS_OF or now)"
        )
        command.add_argument(
            "--wait",
            type=_seconds,
            metavar="SECONDS",
            help="how long to wait for another run holding the warehouse"
            " (default: $BIS_WAREHOUSE_WAIT or 600)",
        )
        command.add_argument(
            "--allow-future-clock",
            action="store_true",
            help="outside dev, accept a clock more than 15 min ahead of this machine's",
        )
        for name in GUARDRAIL_FIELDS:  # the same guardrails as the Launchpad's run config
            default = getattr(Guardrails(), name)
            command.add_argument(
                f"--{name.replace('_', '-')}",
                type=int,
                metavar="N",
                help=f"{GUARDRAIL_HELP[name]} (default {default})",
            )
    run.set_defaults(handler=_run)
    send.set_defaults(handler=_send)

    sequences = commands.add_parser("sequences", help="message sequences")
    sequence_commands = sequences.add_subparsers(dest="action", required=True, metavar="ACTION")
    check = sequence_commands.add_parser(
        "check", help="validate every sequence, condition and template (file:line errors)"
    )
    check.add_argument("--folder", help="sequences folder (default: sequences/)")
    check.add_argument("--flags", help="flags file (default: flags/flags.yaml)")
    check.set_defaults(handler=_sequences_check)

    preview = commands.add_parser("preview", help="what a user would get next, and why")
    preview.add_argument("user_id")
    preview.add_argument("--as-of", help="the pipeline clock, ISO 8601 (default: now)")
    preview.set_defaults(handler=_preview)

    webhook = commands.add_parser("webhook", help="SendGrid Event Webhook receiver")
    webhook_commands = webhook.add_subparsers(dest="action", required=True, metavar="ACTION")
    serve = webhook_commands.add_parser("serve", help="receive signed events into the landing")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8025)
    serve.set_defaults(handler=_webhook_serve)

    flags = commands.add_parser("flags", help="feature flags (flags/flags.yaml)")
    flag_commands = flags.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = flag_commands.add_parser("list", help="every flag, its state per environment")
    listing.add_argument("--env", help="only this environment")
    listing.set_defaults(handler=_flags_list)
    setting = flag_commands.add_parser("set", help="change one flag in one environment")
    setting.add_argument("key")
    setting.add_argument("--state", required=True, choices=("off", "admins", "rollout", "on"))
    setting.add_argument("--percent", type=int, help="rollout only: 0-100")
    setting.add_argument("--env", help="dev | staging | prod (default: $BIS_ENV)")
    setting.add_argument(
        "--force", action="store_true", help="allow narrowing a live rollout (rollback)"
    )
    setting.set_defaults(handler=_flags_set)

    metrics = commands.add_parser("user-metrics", help="a user's progress and next step")
    metrics.add_argument("user_id")
    metrics.add_argument("--json", action="store_true", help="machine-readable output")
    metrics.set_defaults(handler=_user_metrics)

    simulate = commands.add_parser(
        "simulate",
        help="SIMULATION: synthetic users respond to the emails they get; measures the lift",
        description="A closed loop for demos and for testing the statistics: synthetic users"
        " sign up every day, the real pipeline plans and sends to the outbox, and users who"
        " received the email convert at base rate + true lift (holdout: base rate). Everything"
        " goes to its own folder and is labelled as a simulation.",
    )
    simulate.add_argument("--days", type=int, required=True, help="days with new users")
    simulate.add_argument(
        "--true-lift", type=float, required=True, metavar="L", help="e.g. 0.1 = +10 points"
    )
    simulate.add_argument("--users-per-day", type=int, default=500)
    simulate.add_argument("--base-rate", type=float, default=0.278, help="holdout conversion")
    simulate.add_argument("--sequence", default="onboarding_momentum")
    simulate.add_argument("--seed", type=int, default=7)
    simulate.add_argument("--start", help="clock of day 1, ISO 8601 (default: days ago)")
    simulate.add_argument("--data-dir", help="default: $BIS_DATA_DIR/simulation")
    simulate.add_argument("--reset", action="store_true", help="start an earlier simulation over")
    simulate.add_argument(
        "--warehouse-url",
        help="a postgresql:// URL of an empty database (or an earlier simulation's, with"
        " --reset) to simulate on; default: a DuckDB file in the simulation's folder",
    )
    simulate.set_defaults(handler=_simulate)

    status = commands.add_parser("status", help="deployment readiness; exit 1 if blocked")
    status.set_defaults(handler=_status)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    read_dotenv()  # ./.env, under the variables already set (see .env.example)
    if getattr(args, "users", 1) < 1 or getattr(args, "days", 1) < 1:
        print("bis: --users and --days must be at least 1", file=sys.stderr)
        return 2
    try:
        with waiting(getattr(args, "wait", None)):
            return args.handler(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"bis {args.command}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        # A busy warehouse or a fault of the machine (disk full, read-only folder): one
        # line naming the holder or the path, not a traceback. Anything else is a bug.
        line = one_line(exc)
        if line is None:
            raise
        print(f"bis {args.command}: {line}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
