"""`bis status`: the running system: warehouse and migrations, the send ledger, Dagster runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pipelines.lib.engine.url import WarehouseUrl
from pipelines.lib.ops.status_lines import Level, Report
from pipelines.lib.settings import DEFAULT_DAGSTER_HOME
from pipelines.lib.warehouse import (
    Connection,
    WarehouseError,
    WarehouseLockedError,
    connect,
    migration_files,
)

STALE_SENDING = timedelta(minutes=15)
FAILURE_WINDOW = timedelta(hours=24)


def open_warehouse_read_only(
    target: Path | WarehouseUrl,
) -> tuple[Connection | None, str]:
    if isinstance(target, Path) and not target.exists():
        return None, "warehouse not built yet"
    try:
        return connect(target, read_only=True, max_wait_seconds=5.0), ""
    except WarehouseLockedError:
        return None, "warehouse locked by a running job"
    except WarehouseError as exc:
        return None, f"warehouse unreadable: {exc}"


def check_warehouse(
    report: Report, path: Path | WarehouseUrl, con: Connection | None, why: str
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
    except WarehouseError:
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
    except WarehouseError:
        report.add("WARN", "marts: marts.dim_users not built yet; run `bis run`")


def check_ledger(report: Report, con: Connection, now: datetime) -> None:
    def rows(sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
        return con.execute(sql, params or {}).fetchall()

    try:
        counts = rows("select status, count(*) from messaging.sends group by 1 order by 2 desc")
    except WarehouseError:
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


def check_dagster(report: Report, dagster_home: Path | None) -> None:
    if dagster_home is None:
        report.add("OK", "runs: no Dagster instance (DAGSTER_HOME not set)")
        return
    home = Path(dagster_home)
    if not (home / "dagster.yaml").exists() and not (home / "storage").is_dir():
        if home == DEFAULT_DAGSTER_HOME:  # not configured, nothing started yet: nothing wrong
            report.add("OK", f"runs: no Dagster instance yet ({home}; `make ui` creates it)")
        else:
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
