"""`bis status`: is this environment ready to send? One `OK|WARN|FAIL` line per finding.

FAIL means something blocks sending (exit 1): missing sender settings, invalid flags or
sequences, a template that does not render, a warehouse that cannot be read or is newer than
this code. WARN is worth a look but sends can go: no warehouse yet, pending migrations (the
next run applies them), stale `sending`/`unknown` rows, recent failures, no Dagster instance.
Secret values are never printed: every line passes through `scrub_secrets` at the end.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import duckdb

from pipelines.lib.email import Recipient, SenderIdentity, TemplateRenderer
from pipelines.lib.flags import KILL_SWITCH, FlagError, FlagSet, load_flags
from pipelines.lib.ops.environment import (
    SENDER_SETTINGS,
    missing_settings,
    redact,
    scrub_secrets,
    sender_kind_for,
)
from pipelines.lib.sequences import Sequence, SequenceError, check_sequences, condition_sql
from pipelines.lib.settings import FLAGS_FILE, SEQUENCES_DIR, TEMPLATES_DIR, Settings
from pipelines.lib.warehouse import WarehouseLockedError, connect, migration_files

Level = Literal["OK", "WARN", "FAIL"]
MAX_PROBLEMS = 10  # per check; the rest is summarised
STALE_SENDING = timedelta(minutes=15)
FAILURE_WINDOW = timedelta(hours=24)
SYNTHETIC_CONTEXT: dict[str, Any] = {
    "first_name": "Sam",
    "name": "Sam Example",
    "steps_completed": 2,
    "next_step_name": "Connect a data source",
    "percent_complete": 50,
    "current_streak_days": 3,
    "active_days_last_7": 4,
}


@dataclass
class Report:
    lines: list[tuple[Level, str]] = field(default_factory=list)

    def add(self, level: Level, text: str) -> None:
        self.lines.append((level, text))

    def many(self, level: Level, header: str, problems: list[str]) -> None:
        self.add(level, header)
        for problem in problems[:MAX_PROBLEMS]:
            self.add(level, f"  {problem}")
        if len(problems) > MAX_PROBLEMS:
            self.add(level, f"  ... and {len(problems) - MAX_PROBLEMS} more")

    @property
    def failed(self) -> bool:
        return any(level == "FAIL" for level, _ in self.lines)


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
    environ: Mapping[str, str] | None = None,
    paths: StatusPaths | None = None,
    now: datetime | None = None,
) -> tuple[int, list[str]]:
    """(exit code, lines): 1 when any line is FAIL (sending is blocked), else 0."""
    environ = os.environ if environ is None else environ
    paths = paths or StatusPaths()
    now = now or datetime.now(UTC)
    report = Report()
    identity = _check_config(report, settings, environ)
    flags = _check_flags(report, settings, paths.flags)
    sequences = _check_sequences(report, paths, flags)
    con, why = _open_warehouse(settings.warehouse_path)
    try:
        if sequences:
            _check_templates(report, sequences, paths.templates, identity, con, why)
        _check_warehouse(report, settings.warehouse_path, con, why)
        if con is not None:
            _check_ledger(report, con, now)
    finally:
        if con is not None:
            con.close()
    _check_dagster(report, dagster_home)
    if report.failed:
        report.add("FAIL", f"NOT READY to send in {settings.env}: fix the FAIL lines above")
    else:
        report.add("OK", f"ready to send in {settings.env}")
    lines = [f"{level:<4} {text}" for level, text in report.lines]
    return (1 if report.failed else 0), scrub_secrets(lines, environ)


# --- config ---------------------------------------------------------------------------------


def _check_config(report: Report, settings: Settings, environ: Mapping[str, str]) -> SenderIdentity:
    """Sender settings; returns the identity templates are rendered with (demo if invalid)."""
    from pipelines.lib.messaging.runtime import DEMO_IDENTITY

    try:
        kind = sender_kind_for(settings.env, environ)
        missing = missing_settings(settings.env, environ)
    except ValueError as exc:
        report.add("FAIL", f"config: {exc}")
        kind, missing = "?", []
    shown = ", ".join(f"{name}={redact(name, environ.get(name))}" for name in SENDER_SETTINGS)
    if missing:
        report.add(
            "FAIL",
            f"config: BIS_ENV={settings.env} with the {kind} sender needs "
            f"{', '.join(missing)} (not set)",
        )
    elif kind != "?":
        report.add("OK", f"config: BIS_ENV={settings.env}, sender {kind}, data {settings.data_dir}")
    report.add("OK" if not missing else "FAIL", f"config: {shown}")
    if settings.env != "dev" and not environ.get("SENDGRID_WEBHOOK_PUBLIC_KEY", "").strip():
        report.add(
            "WARN",
            "config: SENDGRID_WEBHOOK_PUBLIC_KEY not set: `bis webhook serve` will refuse to "
            "start, so bounces and unsubscribes are not recorded",
        )

    def value(name: str) -> str:
        return environ.get(name, "").strip() or DEMO_IDENTITY[name]

    try:
        return SenderIdentity(
            from_email=value("BIS_FROM_EMAIL"),
            from_name=environ.get("BIS_FROM_NAME", "BIS"),
            unsubscribe_url=value("BIS_UNSUBSCRIBE_URL"),
            postal_address=value("BIS_POSTAL_ADDRESS"),
            app_url=value("BIS_APP_URL"),
        )
    except ValueError as exc:
        report.add("FAIL", f"config: sender identity invalid: {exc}")
        return SenderIdentity(
            from_email=DEMO_IDENTITY["BIS_FROM_EMAIL"],
            from_name="BIS",
            unsubscribe_url=DEMO_IDENTITY["BIS_UNSUBSCRIBE_URL"],
            postal_address=DEMO_IDENTITY["BIS_POSTAL_ADDRESS"],
            app_url=DEMO_IDENTITY["BIS_APP_URL"],
        )


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


# --- templates ------------------------------------------------------------------------------

_SAMPLE_SQL = """
select u.user_id, u.email, u.name, p.steps_completed, p.next_step_name, p.percent_complete,
       p.current_streak_days, p.active_days_last_7
from marts.dim_users u
left join marts.user_progress p using (user_id)
where u.user_id in ({audience})
order by u.user_id
limit 1
"""


def _audience_sql(sequence: Sequence) -> str:
    if sequence.audience.segment is not None:
        return "select user_id from marts.user_segments where segment = $segment"
    return (
        f"select user_id from plan_users"
        f" where coalesce(({condition_sql(sequence.audience.condition or '')}), false)"
    )


def _sample_recipient(
    con: duckdb.DuckDBPyConnection | None, sequence: Sequence
) -> tuple[Recipient, bool]:
    """(recipient, True) for a real user of the audience, else (synthetic user, False)."""
    row = None
    if con is not None:
        from pipelines.lib.messaging.plan_sql import PLAN_USERS_SQL

        params = {"segment": sequence.audience.segment} if sequence.audience.segment else {}
        try:
            if not sequence.audience.segment:
                con.execute(PLAN_USERS_SQL)
            row = con.execute(_SAMPLE_SQL.format(audience=_audience_sql(sequence)), params)
            row = row.fetchone()
        except duckdb.Error:
            row = None
    if row is None:
        return Recipient(
            "status-sample", "sample", "sam@example.com", "Sam Example", dict(SYNTHETIC_CONTEXT)
        ), False
    user_id, email, name, steps, next_step, percent, streak, active = row
    context = {
        "first_name": name.split()[0] if name and name.strip() else None,
        "name": name,
        "steps_completed": steps or 0,
        "next_step_name": next_step,
        "percent_complete": percent or 0,
        "current_streak_days": streak or 0,
        "active_days_last_7": active or 0,
    }
    recipient = Recipient("status-sample", str(user_id), email or "", name, context)
    return recipient, True


def _check_templates(
    report: Report,
    sequences: list[Sequence],
    templates: Path,
    identity: SenderIdentity,
    con: duckdb.DuckDBPyConnection | None,
    why: str,
) -> None:
    renderer = TemplateRenderer(templates, identity)
    problems: list[str] = []
    rendered = 0
    real = 0
    for sequence in sequences:
        recipient, is_real = _sample_recipient(con, sequence)
        real += is_real
        who = f"user {recipient.user_id}" if is_real else "a synthetic user"
        for step in sequence.steps:
            try:
                renderer.render(step.template, recipient)
                rendered += 1
            except Exception as exc:  # any render error blocks this step's sends
                problems.append(f"{step.template} ({sequence.id}, {who}): {exc}")
    if problems:
        report.many("FAIL", f"templates: {len(problems)} do not render", problems)
        return
    source = f"{real} of {len(sequences)} audiences sampled from the warehouse"
    if con is None:
        source = f"synthetic user ({why})"
    report.add("OK", f"templates: {rendered} render ({source})")


# --- warehouse and ledger -------------------------------------------------------------------


def _open_warehouse(path: Path) -> tuple[duckdb.DuckDBPyConnection | None, str]:
    if not path.exists():
        return None, "warehouse not built yet"
    try:
        return connect(path, read_only=True, max_wait_seconds=5.0), ""
    except WarehouseLockedError:
        return None, "warehouse locked by a running job"
    except duckdb.Error as exc:
        return None, f"warehouse unreadable: {exc}"


def _check_warehouse(
    report: Report, path: Path, con: duckdb.DuckDBPyConnection | None, why: str
) -> None:
    if con is None:
        locked = "locked" in why
        level: Level = "FAIL" if "unreadable" in why else "WARN"
        hint = "; try again when it finishes" if locked else ""
        hint = hint or ("; run `bis run` to build it" if "not built" in why else "")
        report.add(level, f"warehouse: {why} ({path}){hint}")
        return
    report.add("OK", f"warehouse: reachable read-only ({path})")
    try:
        applied = dict(
            con.execute("select version, name from messaging.schema_migrations").fetchall()
        )
    except duckdb.Error:
        report.add("WARN", "warehouse: no messaging.schema_migrations; the next run creates it")
        applied = {}
    expected = {version: name for version, name, _ in migration_files()}
    unknown = sorted(set(applied) - set(expected))
    pending = sorted(set(expected) - set(applied))
    if unknown:
        names = ", ".join(f"{v} {applied[v]}" for v in unknown)
        report.add("FAIL", f"migrations: warehouse has migrations this code lacks ({names})")
    elif pending:
        names = ", ".join(expected[v] for v in pending)
        report.add("WARN", f"migrations: pending {names} (applied by the next run)")
    elif applied:
        report.add("OK", f"migrations: current ({len(applied)} applied)")
    try:
        users = con.execute("select count(*) from marts.dim_users").fetchone()
        report.add("OK", f"marts: dim_users has {users[0] if users else 0:,} users")
    except duckdb.Error:
        report.add("WARN", "marts: marts.dim_users not built yet; run `bis run`")


def _check_ledger(report: Report, con: duckdb.DuckDBPyConnection, now: datetime) -> None:
    def rows(sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
        return con.execute(sql, params or {}).fetchall()

    try:
        counts = rows("select status, count(*) from messaging.sends group by 1 order by 2 desc")
    except duckdb.Error:
        report.add("WARN", "ledger: messaging.sends does not exist yet")
        return
    shown = ", ".join(f"{status} {count:,}" for status, count in counts) or "empty"
    report.add("OK", f"ledger: {shown}")
    by_status = dict(counts)
    _stale(
        report,
        rows,
        "sending",
        by_status,
        now - STALE_SENDING,
        "process ended mid-batch; the next send marks them unknown",
    )
    _stale(
        report,
        rows,
        "unknown",
        by_status,
        now - FAILURE_WINDOW,
        "may have been delivered; webhook `delivered` events confirm them",
    )
    failures = rows(
        """
        select coalesce(last_error, status_reason, '(no reason)'), count(*)
        from messaging.sends where status = 'failed' and updated_at >= $since
        group by 1 order by 2 desc, 1 limit 5
        """,
        {"since": now - FAILURE_WINDOW},
    )
    if failures:
        total = sum(count for _, count in failures)
        reasons = [f"{count:,} x {reason}" for reason, count in failures]
        report.many("WARN", f"ledger: {total:,} failed in the last 24 h, by reason:", reasons)
    else:
        report.add("OK", "ledger: no failures in the last 24 h")


def _stale(
    report: Report,
    rows: Callable[..., list[tuple]],
    status: str,
    by_status: dict[str, int],
    before: datetime,
    meaning: str,
) -> None:
    if not by_status.get(status):
        return
    found = rows(
        "select count(*), min(updated_at) from messaging.sends"
        " where status = $status and updated_at < $before",
        {"status": status, "before": before},
    )
    stale, oldest = found[0] if found else (0, None)
    if stale:
        report.add("WARN", f"ledger: {stale:,} `{status}` rows since {oldest} ({meaning})")
    else:
        report.add("OK", f"ledger: {by_status[status]:,} `{status}` rows, all recent")


# --- dagster --------------------------------------------------------------------------------


def _check_dagster(report: Report, dagster_home: Path | None) -> None:
    if dagster_home is None:
        report.add("OK", "runs: no Dagster instance (DAGSTER_HOME not set)")
        return
    home = Path(dagster_home)
    if not (home / "dagster.yaml").exists() and not (home / "storage").is_dir():
        report.add("WARN", f"runs: no Dagster instance in {home}")
        return
    try:
        from dagster import DagsterInstance

        with DagsterInstance.from_config(str(home)) as instance:
            records = instance.get_run_records(limit=5)
            runs = [
                (r.dagster_run.job_name, r.dagster_run.status.value, r.create_timestamp)
                for r in records
            ]
    except Exception as exc:  # an unreadable instance must not hide the rest of the report
        report.add("WARN", f"runs: no Dagster instance readable in {home} ({type(exc).__name__})")
        return
    if not runs:
        report.add("OK", f"runs: Dagster instance {home} has no runs yet")
    for job, status, created in runs:
        level: Level = "WARN" if status in ("FAILURE", "CANCELED") else "OK"
        report.add(level, f"runs: {created:%Y-%m-%d %H:%M} UTC {job} {status}")
