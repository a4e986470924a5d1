"""The `bis` command: sample data, the main job, and operations (see `bis --help`)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from pipelines.lib.clock import as_of as pipeline_clock
from pipelines.lib.settings import FLAGS_FILE, SEQUENCES_DIR, load_settings

FORMATS = ("jsonl", "jsonl.gz", "parquet", "csv")


def _generate(args: argparse.Namespace) -> int:
    from pipelines.lib.sample_data import generate_sample

    settings = load_settings()
    clock = pipeline_clock(args.as_of)
    # Anchored to the day, so the same seed on the same day writes byte-identical files.
    end_at = datetime(clock.year, clock.month, clock.day, tzinfo=UTC)
    out_dir = Path(args.out) if args.out else settings.landing_events_dir
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


def _run(args: argparse.Namespace) -> int:
    from pipelines.lib.pipeline import run_pipeline

    settings = load_settings()
    clock = pipeline_clock(args.as_of)
    print(
        f"bis run: as_of {clock:%Y-%m-%dT%H:%M:%SZ}, env {settings.env},"
        f" warehouse {settings.warehouse_path}"
    )
    report = run_pipeline(settings, clock)
    for line in report.lines:
        print(line)
    return 1 if report.failed else 0


def _send(args: argparse.Namespace) -> int:
    from pipelines.lib.pipeline import plan_and_send

    settings = load_settings()
    report = plan_and_send(settings, pipeline_clock(args.as_of))
    for line in report.lines:
        print(line)
    return 0


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
    from pipelines.lib.warehouse import open_warehouse

    settings = load_settings()
    with open_warehouse(settings.warehouse_path) as con:
        try:
            lines = preview_user(
                con,
                args.user_id,
                load_plan_inputs(),
                env=settings.env,
                as_of=pipeline_clock(args.as_of),
            )
        except UnknownUserError as exc:
            print(f"bis preview: {exc}", file=sys.stderr)
            return 1
    print("\n".join(lines))
    return 0


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
    run.add_argument("--as-of", help="the pipeline clock, ISO 8601 (default: $BIS_AS_OF or now)")
    run.set_defaults(handler=_run)

    send = commands.add_parser("send", help="plan and send once, on the marts as they are")
    send.add_argument("--as-of", help="the pipeline clock, ISO 8601 (default: $BIS_AS_OF or now)")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "users", 1) < 1 or getattr(args, "days", 1) < 1:
        print("bis: --users and --days must be at least 1", file=sys.stderr)
        return 2
    try:
        return args.handler(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"bis {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
