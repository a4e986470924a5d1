"""Stages that compute the same rows another way: the floor SQL and the pandas baseline."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from bench.stage_kit import Config, Result, timed

FLOOR_SQL = Path(__file__).with_name("floor.sql")
MART_TABLES = ("dim_users", "user_segments", "kpi_daily")


def run_floor(con: Any, as_of: datetime) -> None:
    """Run floor.sql at `as_of` on an open warehouse connection."""
    con.execute(f"set variable as_of = timestamptz '{as_of.isoformat()}'")
    for statement in FLOOR_SQL.read_text().split(";\n"):
        if statement.strip() and not _only_comments(statement):
            con.execute(statement)


def _only_comments(sql: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in sql.splitlines())


def _check_floor(con: Any) -> list[dict[str, Any]]:
    from bench.compare import compare_relations

    return [
        _diff_json(compare_relations(con, name, f"marts.{name}", f"bench_floor.{name}"))
        for name in MART_TABLES
    ]


def _diff_json(diff: Any) -> dict[str, Any]:
    return {"table": diff.name, "ok": diff.ok, "report": diff.describe()}


def _floor(cfg: Config, as_of: datetime) -> Result:
    from pipelines.lib.warehouse import connect

    con = connect(cfg.settings().warehouse_path)
    try:
        seconds, _ = timed(lambda: run_floor(con, as_of))
        result: Result = {"seconds": seconds, "events": _count_events(con)}
        if cfg.check:
            result["check"] = _check_floor(con)
        return result
    finally:
        con.close()


def _count_events(con: Any) -> int:
    return con.execute("select count(*) from raw.events").fetchone()[0]


def stage_floor_sql(cfg: Config) -> Result:
    return _floor(cfg, cfg.t0)


def stage_floor_check_incremental(cfg: Config) -> Result:
    """--check only: the marts after the incremental run equal the floor recomputed at T1."""
    return _floor(cfg, cfg.t1)


def stage_pandas_baseline(cfg: Config) -> Result:
    from bench import pandas_segments

    paths = [cfg.work / "landing_parquet" / "history.parquet"]

    def work() -> Any:
        events = pandas_segments.load_events(paths)
        return len(events), pandas_segments.user_segments(events, cfg.t0)

    seconds, (events, segments) = timed(work)
    result: Result = {"seconds": seconds, "events": events, "segments": len(segments)}
    if cfg.check:
        from bench.compare import compare_relations
        from pipelines.lib.warehouse import connect

        con = connect(cfg.settings().warehouse_path, read_only=True)
        try:
            con.register("pandas_user_segments", segments)
            diff = compare_relations(
                con, "user_segments", "marts.user_segments", "pandas_user_segments"
            )
            result["check"] = [_diff_json(diff)]
        finally:
            con.close()
    return result
