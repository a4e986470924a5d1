"""The PostgreSQL side of `bench/run.py --engine postgres`: a throwaway server for the run
(tests/dbt/pg_throwaway.py), one fresh database per size, the server's memory, and what the
results say of the two engines: ratios per stage and the checks that they agree.

A stage's peak RSS (os.wait4) covers its own process tree only: the server's backends are
children of the postmaster, not of the stage. Their memory is sampled from /proc while a
stage runs: the sum of the proportional set size (Pss: shared pages such as shared_buffers
divided among the processes sharing them) of the postmaster and all its descendants, every
0.1 s. Backends that live shorter than a sample are missed, so it is a lower bound.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import report
from tests.dbt import pg_throwaway

# `--engine postgres`: after the DuckDB stages, on the same landing files.
POSTGRES_STAGES = (
    "ingest_jsonl_postgres",
    "ingest_parquet_postgres",
    "backdate_postgres",
    "dbt_full_postgres",
    "plan_send_postgres",
    "dbt_incremental_postgres",
)
SAMPLE_SECONDS = 0.1
# What the results record about the server: the settings that bound its speed and memory.
SERVER_SETTINGS = (
    "server_version",
    "shared_buffers",
    "work_mem",
    "maintenance_work_mem",
    "effective_cache_size",
    "max_parallel_workers_per_gather",
    "fsync",
    "synchronous_commit",
)


class BenchServer:
    """A running throwaway server: databases on demand, its settings, its memory."""

    def __init__(self, server: pg_throwaway.Server) -> None:
        self.server = server

    @property
    def postmaster_pid(self) -> int:
        pid_file = self.server.directory / "data" / "postmaster.pid"
        return int(pid_file.read_text().splitlines()[0])

    def fresh_database(self, name: str) -> str:
        """An empty database `name` (dropped first if there), as a BIS_WAREHOUSE_URL."""
        self.server.admin(f'drop database if exists "{name}"', f'create database "{name}"')
        return self.server.url(name)

    def drop_database(self, name: str) -> None:
        self.server.admin(f'drop database if exists "{name}" with (force)')

    def database_mb(self, name: str) -> float:
        """The database's size on disk (tables, indexes, TOAST), MB."""
        con = self.server.connect("postgres")
        try:
            with con.cursor() as cursor:
                cursor.execute("select pg_database_size(%s)", [name])
                return cursor.fetchone()[0] / 2**20
        finally:
            con.close()

    def settings(self) -> dict[str, str]:
        con = self.server.connect("postgres")
        try:
            with con.cursor() as cursor:
                found = {}
                for name in SERVER_SETTINGS:
                    cursor.execute(f"show {name}")
                    found[name] = cursor.fetchone()[0]
                return found
        finally:
            con.close()

    def memory_mb(self) -> float:
        return server_pss_mb(self.postmaster_pid)


@contextlib.contextmanager
def bench_server() -> Iterator[BenchServer]:
    bindir = pg_throwaway.find_bindir()
    if bindir is None:
        raise RuntimeError(
            "PostgreSQL server binaries not found: `make bench ENGINE=postgres` installs"
            " Debian's postgresql package (python tests/dbt/pg_throwaway.py install)"
        )
    with pg_throwaway.throwaway_server(bindir) as server:
        yield BenchServer(server)


def _children(pid: int) -> list[int]:
    found = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text()
            found.extend(int(child) for child in text.split())
    return found


def _pss_kib(pid: int) -> int:
    """The process's Pss in KiB (0 when it has exited meanwhile)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def server_pss_mb(postmaster: int) -> float:
    """The summed Pss (MB) of the postmaster and every process below it."""
    total, pending = 0, [postmaster]
    while pending:
        pid = pending.pop()
        total += _pss_kib(pid)
        pending.extend(_children(pid))
    return total / 1024


class MemorySampler:
    """The peak of the server's memory while the `with` block runs (a background thread)."""

    def __init__(self, server: BenchServer) -> None:
        self.server = server
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        pid = self.server.postmaster_pid
        while True:
            self.peak_mb = max(self.peak_mb, server_pss_mb(pid))
            if self._stop.wait(SAMPLE_SECONDS):
                return

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stop.set()
        self._thread.join()


# -- results ------------------------------------------------------------------------


def postgres_summary(stages: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per stage: seconds on PostgreSQL / seconds on DuckDB, and the server's peak memory."""
    vs_duckdb = {}
    for name in POSTGRES_STAGES:
        if name == "backdate_postgres":  # untimed set-up
            continue
        duckdb_name = name.removesuffix("_postgres")
        vs_duckdb[duckdb_name] = report.ratio(
            stages[name]["seconds"], stages[duckdb_name]["seconds"]
        )
    for part in ("plan_seconds", "send_seconds"):
        vs_duckdb[f"plan_send.{part}"] = report.ratio(
            stages["plan_send_postgres"][part], stages["plan_send"][part]
        )
    return {
        "vs_duckdb": vs_duckdb,
        "server_peak_pss_mb": {
            name.removesuffix("_postgres"): stage["server_peak_pss_mb"]
            for name, stage in stages.items()
            if name.endswith("_postgres")
        },
        "database_mb": stages["dbt_incremental_postgres"].get("database_mb"),
    }


def postgres_checks(stages: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The same files and clocks on both engines: the same rows loaded, the same plan."""
    checks = []
    for stage, key in (
        ("ingest_jsonl", "rows_loaded"),
        ("ingest_parquet", "rows_loaded"),
        ("dbt_incremental", "events"),
    ):
        duckdb_value, postgres_value = stages[stage][key], stages[f"{stage}_postgres"][key]
        checks.append(
            {
                "stage": f"{stage}_postgres",
                "table": "raw.events",
                "ok": duckdb_value == postgres_value,
                "report": f"raw.events after {stage}: DuckDB {duckdb_value},"
                f" PostgreSQL {postgres_value}",
            }
        )
    plans = {
        engine: (stages[name]["decisions"], stages[name]["messages"])
        for engine, name in (("DuckDB", "plan_send"), ("PostgreSQL", "plan_send_postgres"))
    }
    checks.append(
        {
            "stage": "plan_send_postgres",
            "table": "messaging.sends",
            "ok": plans["DuckDB"] == plans["PostgreSQL"],
            "report": "plan decisions and messages sent: "
            + "; ".join(f"{engine} {plan[0]}, {plan[1]} sent" for engine, plan in plans.items()),
        }
    )
    return checks
