"""Stages that load and build: data generation, ingest, dbt, and the fixed overheads."""

from __future__ import annotations

import re
import shutil
import time
from datetime import datetime
from typing import Any

from bench.stage_kit import Config, Result, timed
from pipelines.lib.settings import Settings

# "12 of 165 OK created sql table model marts.kpi_daily .... [OK in 0.36s]"
_MODEL_LINE = re.compile(r"OK created sql (\w+) model ([\w.]+) .*?in (\d+(?:\.\d+)?)s\]")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def stage_generate(cfg: Config) -> Result:
    from bench.data import make_bench_data

    seconds, data = timed(lambda: make_bench_data(cfg.work, events=cfg.events, t0=cfg.t0))
    return {
        "seconds": seconds,
        "events": data.history_events,
        "increment_events": data.increment_events,
        "users": data.users,
        "files": {
            "history_jsonl": str(data.history_jsonl),
            "history_parquet": str(data.history_parquet),
            "increment_parquet": str(data.increment_parquet),
        },
    }


class _TimedConnection:
    """A DuckDB connection that adds up the seconds spent in each kind of SQL statement: the
    profile of an ingest (the rest of its time is reading files, hashing and Python)."""

    def __init__(self, con: Any) -> None:
        self._con = con
        self.seconds: dict[str, float] = {}

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self._con.execute(sql, *args, **kwargs)
        finally:
            label = " ".join(sql.split()[:6])
            self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - start

    def sql(self, query: str, *args: Any, **kwargs: Any) -> Any:
        """A relation whose `to_arrow_table()` (where the query runs) is timed too."""
        relation = self._con.sql(query, *args, **kwargs)
        label = " ".join(query.split()[:6])
        seconds = self.seconds

        class _TimedRelation:
            def to_arrow_table(self) -> Any:
                start = time.perf_counter()
                try:
                    return relation.to_arrow_table()
                finally:
                    seconds[label] = seconds.get(label, 0.0) + time.perf_counter() - start

        return _TimedRelation()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)

    def top(self, count: int = 4) -> dict[str, float]:
        ranked = sorted(self.seconds.items(), key=lambda item: -item[1])[:count]
        return {label: round(seconds, 3) for label, seconds in ranked}


def _timed_postgres(con: Any) -> _TimedConnection:
    """The same profile on a PostgreSQL connection, timed in place: the ingest tells the
    engines apart by the connection's class, so it must get the connection itself."""
    timed = _TimedConnection(con)
    for name in ("execute", "copy_file"):
        method = getattr(con, name)

        def timed_method(
            sql: str, *args: Any, _method: Any = method, _name: str = name, **kwargs: Any
        ) -> Any:
            start = time.perf_counter()
            try:
                return _method(sql, *args, **kwargs)
            finally:
                # copy_file's first argument is the table: "copy ingest_incoming".
                words = sql.split()[:6] if _name == "execute" else ["copy", sql]
                label = " ".join(words)
                timed.seconds[label] = timed.seconds.get(label, 0.0) + time.perf_counter() - start

        setattr(con, name, timed_method)
    return timed


def ingest(cfg: Config, folder: str, settings: Settings) -> Result:
    """Ingest the landing folder `folder` into the warehouse of `settings`, profiled."""
    from pipelines.lib.ingest import ingest_landing_folder
    from pipelines.lib.warehouse import open_warehouse

    profile: dict[str, float] = {}

    def work() -> Any:
        with open_warehouse(settings.warehouse) as con:
            if settings.warehouse.is_postgres:
                timed = _timed_postgres(con)
                target = con
            else:
                timed = target = _TimedConnection(con)
            summary = ingest_landing_folder(target, cfg.work / folder, reference_time=cfg.t1)
            profile.update(timed.top())
            return summary

    seconds, summary = timed(work)
    if summary.errors:
        raise RuntimeError(f"ingest failed: {summary.errors}")
    return {
        "seconds": seconds,
        "sql_seconds": profile,
        "events": summary.total("rows_read"),
        "rows_loaded": summary.total("rows_loaded"),
        "rows_duplicate": summary.total("rows_duplicate"),
        "rows_rejected": summary.total("rows_rejected"),
    }


def stage_ingest_jsonl(cfg: Config) -> Result:
    result = ingest(cfg, "landing_jsonl", cfg.settings("warehouse_jsonl"))
    # Only its speed matters; the Parquet warehouse is the one the later stages use.
    shutil.rmtree(cfg.work / "warehouse_jsonl", ignore_errors=True)
    return result


def stage_ingest_parquet(cfg: Config) -> Result:
    return ingest(cfg, "landing_parquet", cfg.settings())


def stage_ingest_floor(cfg: Config) -> Result:
    """The floor of ingest: DuckDB alone copying each landing file into a table, with the
    Segment columns typed and nothing else (no validation, rejects, dedupe or bookkeeping)."""
    import duckdb

    from pipelines.lib.segment_spec import SEGMENT_COLUMNS
    from pipelines.lib.warehouse import memory_limit

    database = cfg.work / "ingest_floor.duckdb"
    con = duckdb.connect(str(database), config={"memory_limit": memory_limit()})
    parquet = cfg.work / "landing_parquet" / "history.parquet"
    jsonl = cfg.work / "landing_jsonl" / "history.jsonl"
    columns = {
        name: "JSON" if name in ("properties", "traits", "context") else "VARCHAR"
        for name in SEGMENT_COLUMNS
    }
    try:
        parquet_seconds, _ = timed(
            lambda: con.execute(f"create table p as select * from read_parquet('{parquet}')")
        )
        jsonl_seconds, _ = timed(
            lambda: con.execute(
                f"create table j as select * from read_json('{jsonl}',"
                f" format = 'newline_delimited', columns = {columns})"
            )
        )
        events = con.execute("select count(*) from p").fetchall()[0][0]
    finally:
        con.close()
        database.unlink(missing_ok=True)
    return {
        "seconds": parquet_seconds + jsonl_seconds,
        "events": events,
        "parquet_seconds": round(parquet_seconds, 3),
        "parquet_events_per_s": round(events / parquet_seconds),
        "jsonl_seconds": round(jsonl_seconds, 3),
        "jsonl_events_per_s": round(events / jsonl_seconds),
    }


def stage_backdate(cfg: Config) -> Result:
    return backdate(cfg.settings())


def backdate(settings: Settings) -> Result:
    """Untimed set-up: make the history look as if it was loaded over 60 days.

    The history is ingested minutes before the increment here, but in production it arrived
    day by day. The incremental model re-reads rows ingested within 48 hours of its high-water
    mark, so without this every history row would count as new in the incremental run.
    """
    from pipelines.lib.warehouse import open_warehouse

    with open_warehouse(settings.warehouse) as con:
        con.execute("update raw.events set ingested_at = coalesce(received_at, occurred_at)")
    return {"seconds": 0.0}


# -- dbt ------------------------------------------------------------------------------


def model_timings(output: str) -> dict[str, float]:
    """Per-model build seconds from dbt's log lines (run_dbt_build keeps no run_results)."""
    found = {}
    for match in _MODEL_LINE.finditer(_ANSI.sub("", output)):
        found[match.group(2)] = float(match.group(3))
    return dict(sorted(found.items(), key=lambda item: -item[1]))


def dbt_build(settings: Settings, as_of: datetime, *extra: str) -> Result:
    from pipelines.lib.dbt import run_dbt_build

    seconds, result = timed(lambda: run_dbt_build(settings, as_of, *extra))
    if not result.success:
        failures = "\n".join(result.failures[:10])
        raise RuntimeError(f"dbt build failed:\n{failures}")
    return {"seconds": seconds, "nodes": result.counts, "models": model_timings(result.output)}


def warehouse_events(settings: Settings) -> int:
    from pipelines.lib.warehouse import connect

    con = connect(settings.warehouse, read_only=True)
    try:
        return con.execute("select count(*) from raw.events").fetchone()[0]
    finally:
        con.close()


def stage_dbt_full(cfg: Config) -> Result:
    return full_build(cfg, cfg.settings())


def full_build(cfg: Config, settings: Settings) -> Result:
    result = dbt_build(settings, cfg.t0)
    result["events"] = warehouse_events(settings)
    return result


def stage_dbt_incremental(cfg: Config) -> Result:
    """One more day arrives: ingest it, then `dbt build` at T0 + 1 day."""
    return incremental(cfg, cfg.settings())


def incremental(cfg: Config, settings: Settings) -> Result:
    increment = ingest(cfg, "landing_increment", settings)
    result = dbt_build(settings, cfg.t1)
    result["events"] = warehouse_events(settings)
    result["new_events"] = increment["events"]
    result["ingest_seconds"] = increment["seconds"]
    return result


# -- fixed overheads (tiny data) ---------------------------------------------------------


def stage_overhead_dbt(cfg: Config) -> Result:
    """`dbt build` on a tiny warehouse (200 users): what any run costs before the data."""
    from pipelines.lib.ingest import ingest_landing_folder
    from pipelines.lib.sample_data.generate import generate_sample
    from pipelines.lib.warehouse import open_warehouse

    settings = cfg.settings()
    landing = cfg.work / "landing"
    generated = generate_sample(
        out_dir=landing, end_at=cfg.t0, users=200, days=60, seed=7, progress=False
    )
    with open_warehouse(settings.warehouse) as con:
        ingest_landing_folder(con, landing, reference_time=cfg.t1)
    # The first build parses the whole project; a scheduled run finds the parse kept by the
    # run before it and re-parses only what changed (the clock is not a var): that one is the
    # fixed cost of every run.
    cold = dbt_build(settings, cfg.t0)["seconds"]
    warm = dbt_build(settings, cfg.t1)["seconds"]
    return {"seconds": warm, "cold_seconds": cold, "events": generated.events}


def stage_overhead_dagster(cfg: Config) -> Result:
    """The same `dbt build` through Dagster, in process: definitions load + materialize."""
    from pipelines.lib.settings import set_process_environ

    set_process_environ(
        {
            "BIS_DATA_DIR": str(cfg.settings().data_dir),
            "BIS_AS_OF": cfg.t0.isoformat(),
            "BIS_ENV": "dev",
        }
    )
    # Loading the definitions imports Dagster and dagster-dbt (the manifest is parsed before).
    load_seconds, _ = timed(lambda: __import__("pipelines.definitions"))
    import dagster as dg

    from pipelines.defs.dbt.assets import dbt_models
    from pipelines.defs.dbt.resources import dbt_resource

    def materialize() -> Any:
        return dg.materialize(
            [dbt_models],
            resources={"dbt": dbt_resource()},
            instance=dg.DagsterInstance.ephemeral(),
        )

    seconds, result = timed(materialize)
    if not result.success:
        raise RuntimeError("Dagster materialization of the dbt assets failed")
    return {"seconds": seconds, "events": None, "definitions_load_seconds": load_seconds}
