"""`bis status`: is this environment ready to send? One `OK|WARN|FAIL` line per finding.

FAIL means something blocks sending (exit 1): missing sender settings, invalid flags or
sequences, a template that does not render, a warehouse that cannot be read or is newer than
this code. WARN is worth a look but sends can go: no warehouse yet, pending migrations (the
next run applies them), stale `sending`/`unknown` rows, recent failures, no Dagster instance.
Secret values are never printed: every line passes through `scrub_secrets` at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pipelines.lib.clock import wall_clock
from pipelines.lib.email import SenderIdentity
from pipelines.lib.flags import KILL_SWITCH, FlagError, FlagSet, load_flags
from pipelines.lib.ops.environment import (
    SENDER_SETTINGS,
    missing_settings,
    redact,
    scrub_secrets,
)
from pipelines.lib.ops.status_lines import Report
from pipelines.lib.ops.status_runtime import (
    check_dagster,
    check_ledger,
    check_warehouse,
    open_warehouse_read_only,
)
from pipelines.lib.ops.status_templates import check_templates
from pipelines.lib.sequences import Sequence, SequenceError, check_sequences
from pipelines.lib.settings import (
    FLAGS_FILE,
    SEQUENCES_DIR,
    TEMPLATES_DIR,
    Settings,
    secret_values,
)


@dataclass(frozen=True)
class StatusPaths:
    """Inputs of the report; tests point them at copies."""

    flags: Path = FLAGS_FILE
    sequences: Path = SEQUENCES_DIR
    templates: Path = TEMPLATES_DIR
    dbt_project: Path | None = None  # None: pipelines.lib.dbt.DBT_PROJECT_DIR


def status_report(
    settings: Settings,
    *,
    dagster_home: Path | None,
    paths: StatusPaths | None = None,
    now: datetime | None = None,
) -> tuple[int, list[str]]:
    """(exit code, lines): 1 when any line is FAIL (sending is blocked), else 0."""
    paths = paths or StatusPaths()
    now = now or wall_clock()
    report = Report()
    identity = _check_config(report, settings)
    flags = _check_flags(report, settings, paths.flags)
    sequences = _check_sequences(report, paths, flags)
    from pipelines.lib.published import reader_target

    published = reader_target(settings)  # DuckDB: as the last run left it; never waits
    con, why = open_warehouse_read_only(published)
    try:
        if sequences:
            check_templates(report, sequences, paths.templates, identity, con, why)
        check_warehouse(report, published, con, why)
        if con is not None:
            check_ledger(report, con, now)
    finally:
        if con is not None:
            con.close()
    check_dagster(report, dagster_home)
    if report.failed:
        report.add("FAIL", f"NOT READY to send in {settings.env}: fix the FAIL lines above")
    else:
        report.add("OK", f"ready to send in {settings.env}")
    lines = [f"{level:<4} {text}" for level, text in report.lines]
    return (1 if report.failed else 0), scrub_secrets(lines, status_secrets(settings))


def status_secrets(settings: Settings) -> list[str]:
    """Everything to scrub from the report: the settings' secrets and any secret-named
    variable of the environment (a key pasted where it does not belong)."""
    return [*settings.secrets(), *secret_values()]


# --- config ---------------------------------------------------------------------------------


def _check_config(report: Report, settings: Settings) -> SenderIdentity:
    """Sender settings; returns the identity templates are rendered with (demo if invalid)."""
    from pipelines.lib.messaging.runtime import sender_identity

    kind = settings.sender_kind
    missing = missing_settings(settings)
    values = settings.sender_variables()
    shown = ", ".join(f"{name}={redact(name, values.get(name))}" for name in SENDER_SETTINGS)
    if missing:
        report.add(
            "FAIL",
            f"config: BIS_ENV={settings.env} with the {kind} sender needs "
            f"{', '.join(missing)} (not set)",
        )
    else:
        report.add(
            "OK",
            f"config: BIS_ENV={settings.env}, sender {kind}, data {settings.data_dir},"
            f" warehouse {settings.warehouse.display()}",
        )
    report.add("OK" if not missing else "FAIL", f"config: {shown}")
    if settings.env != "dev" and not settings.sendgrid_webhook_public_key:
        report.add(
            "WARN",
            "config: SENDGRID_WEBHOOK_PUBLIC_KEY not set: `bis webhook serve` will refuse to "
            "start, so bounces and unsubscribes are not recorded",
        )
    try:
        return sender_identity(settings)
    except ValueError as exc:
        report.add("FAIL", f"config: sender identity invalid: {exc}")
        # The demo identity: settings with no sender variables set.
        return sender_identity(Settings(env=settings.env, data_dir=settings.data_dir))


# --- flags and sequences --------------------------------------------------------------------


def _check_flags(report: Report, settings: Settings, path: Path) -> FlagSet | None:
    try:
        flags = load_flags(path)
    except FlagError as exc:
        report.many("FAIL", f"flags: {path} is invalid", exc.problems)
        return None
    states = ", ".join(
        f"{key} {flag.environments[settings.env].describe()}" for key, flag in flags.flags.items()
    )
    report.add("OK", f"flags: {len(flags.flags)} valid; in {settings.env}: {states}")
    if flags.setting(KILL_SWITCH, settings.env).state == "off":
        report.add(
            "WARN", f"flags: the `{KILL_SWITCH}` kill switch is off in {settings.env}: no email"
        )
    return flags


def _check_sequences(
    report: Report, paths: StatusPaths, flags: FlagSet | None
) -> list[Sequence] | None:
    from pipelines.lib.sequences import known_columns, load_sequences

    if flags is None:
        report.add("FAIL", "sequences: not checked (the flags file is invalid)")
        return None
    if paths.dbt_project is None:
        from pipelines.lib.dbt import DBT_PROJECT_DIR

        dbt_project = DBT_PROJECT_DIR
    else:
        dbt_project = paths.dbt_project
    try:
        problems = check_sequences(
            paths.sequences, flag_keys=set(flags.flags), columns=known_columns(dbt_project)
        )
        if problems:
            report.many("FAIL", f"sequences: {len(problems)} problem(s)", problems)
            return None
        sequences = load_sequences(paths.sequences)
    except SequenceError as exc:
        report.many("FAIL", "sequences: invalid", exc.errors)
        return None
    except (OSError, ValueError) as exc:
        report.add("FAIL", f"sequences: cannot check: {exc}")
        return None
    report.add("OK", f"sequences: {len(sequences)} valid in {paths.sequences}")
    return sequences
