"""Turning stage results into latest.json and the printed table: ratios, growth, targets."""

from __future__ import annotations

import math
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

# The stages every results file reports (bench/results/*.json "stages"); extras may follow.
REPORTED_STAGES = (
    "ingest_jsonl",
    "ingest_parquet",
    "dbt_full",
    "dbt_incremental",
    "plan_send",
    "floor_sql",
    "pandas_baseline",
)
PIPELINE_STAGES = ("ingest_jsonl", "ingest_parquet", "dbt_full", "dbt_incremental", "plan_send")
TARGET_EVENTS = 10_000_000
MESSAGES_PER_TARGET = 100_000


def code_version(root: Path) -> dict[str, Any]:
    """The commit measured, and whether the work tree had uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def machine() -> dict[str, Any]:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = {}
    for package in ("duckdb", "dbt-core", "dbt-duckdb", "dagster", "pandas", "pyarrow"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cores": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "memory_gib": round(memory_gib, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
    }


def stage_entry(result: dict[str, Any]) -> dict[str, Any]:
    """The contract's three numbers first, then whatever else the stage measured."""
    seconds = result["seconds"]
    events = result.get("events")
    entry = {
        "seconds": round(seconds, 3),
        "events_per_s": round(events / seconds) if events and seconds else None,
        "peak_rss_mb": round(result["peak_rss_mb"], 1),
    }
    entry.update({k: v for k, v in result.items() if k not in entry})
    return entry


def growth_exponent(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of log(seconds) against log(events): 1.0 is linear."""
    points = [(x, y) for x, y in points if x > 0 and y > 0]
    if len(points) < 2 or len({x for x, _ in points}) < 2:
        return None
    xs = [math.log(x) for x, _ in points]
    ys = [math.log(y) for _, y in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mean_x) ** 2 for x in xs
    )
    return round(slope, 3)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def _cold_dbt(overhead: dict[str, Any]) -> float | None:
    """dbt's fixed cost with a full parse (the full build's case); older results lack it."""
    return overhead.get("dbt_build_cold_seconds", overhead.get("dbt_build_seconds"))


def ratios(stages: dict[str, dict[str, Any]], overhead: dict[str, Any]) -> dict[str, Any]:
    seconds = {name: stage["seconds"] for name, stage in stages.items()}
    pipeline = seconds["ingest_parquet"] + seconds["dbt_full"]
    dbt_fixed = _cold_dbt(overhead)
    return {
        "dbt_full_vs_floor": ratio(seconds["dbt_full"], seconds["floor_sql"]),
        # dbt's own fixed cost (start-up, parse, ~165 nodes) taken out: the data-bound part.
        "dbt_full_minus_fixed_vs_floor": ratio(
            seconds["dbt_full"] - dbt_fixed if dbt_fixed is not None else None,
            seconds["floor_sql"],
        ),
        "incremental_vs_full": ratio(seconds["dbt_incremental"], seconds["dbt_full"]),
        # Validated, deduplicated, accounted ingest against DuckDB's bare copy of the file.
        "ingest_parquet_vs_floor": ratio(
            seconds["ingest_parquet"], stages.get("ingest_floor", {}).get("parquet_seconds")
        ),
        "ingest_jsonl_vs_floor": ratio(
            seconds["ingest_jsonl"], stages.get("ingest_floor", {}).get("jsonl_seconds")
        ),
        # From the same landing Parquet file to the segments: pandas vs ingest + dbt build.
        "pandas_vs_pipeline": ratio(seconds["pandas_baseline"], pipeline),
        "pandas_vs_floor": ratio(seconds["pandas_baseline"], seconds["floor_sql"]),
    }


def targets(
    stages: dict[str, dict[str, Any]], run_ratios: dict[str, Any], overhead: dict[str, Any]
) -> dict[str, Any]:
    """The performance targets (defined at 10M events on 2 cores), checked on this run."""
    plan_send = stages["plan_send"]
    messages = plan_send.get("messages") or 0
    per_100k = plan_send["seconds"] * MESSAGES_PER_TARGET / messages if messages else None
    dbt_limit = None
    if _cold_dbt(overhead) is not None:  # the full build parses the project: compare like
        dbt_limit = 3 * stages["floor_sql"]["seconds"] + _cold_dbt(overhead)
    peak = max(stages[name]["peak_rss_mb"] for name in PIPELINE_STAGES)

    def target(value: float | None, limit: float | None, at_least: bool) -> dict[str, Any]:
        met = None
        if value is not None and limit is not None:
            met = value >= limit if at_least else value <= limit
        return {
            "value": None if value is None else round(value, 3),
            "limit": None if limit is None else round(limit, 3),
            "met": met,
        }

    return {
        "ingest_parquet_events_per_s": target(
            stages["ingest_parquet"]["events_per_s"], 1_000_000, True
        ),
        "ingest_jsonl_events_per_s": target(stages["ingest_jsonl"]["events_per_s"], 300_000, True),
        "dbt_full_seconds_vs_3x_floor_plus_fixed": target(
            stages["dbt_full"]["seconds"], dbt_limit, False
        ),
        "incremental_vs_full": target(run_ratios["incremental_vs_full"], 0.25, False),
        "plan_send_seconds_per_100k_messages": target(per_100k, 20, False),
        "pipeline_peak_rss_mb": target(peak, 4096, False),
        "pandas_vs_pipeline": target(run_ratios["pandas_vs_pipeline"], 5, True),
    }


# -- printing ----------------------------------------------------------------------------


def _number(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def stage_table(size: dict[str, Any]) -> list[str]:
    """A Markdown table of one size's stages."""
    lines = [
        f"events {size['events']:,} ({size['users']:,} users); "
        f"increment {size['increment_events']:,} events",
        "",
        "| stage | seconds | events/s | peak RSS MB | notes |",
        "|---|---:|---:|---:|---|",
    ]
    for name in ("generate", *REPORTED_STAGES, "send_one_by_one"):
        stage = size["stages"].get(name)
        if stage is None:
            continue
        lines.append(
            f"| {name} | {_number(stage['seconds'], 2)} | {_number(stage['events_per_s'])}"
            f" | {_number(stage['peak_rss_mb'], 0)} | {_notes(name, stage)} |"
        )
    return lines


def _notes(name: str, stage: dict[str, Any]) -> str:
    if name == "plan_send":
        profile = stage["send_profile"]
        return (
            f"{stage['messages']:,} messages: plan {stage['plan_seconds']:.2f}s,"
            f" send {stage['send_seconds']:.2f}s in {stage['requests']} requests (render"
            f" {profile['render_and_batch_seconds']:.1f}s, HTTP {profile['http_seconds']:.1f}s,"
            f" ledger {profile['ledger_and_rows_seconds']:.1f}s)"
        )
    if name == "send_one_by_one":
        return f"{stage['messages']:,} messages, {stage['requests']} requests"
    if name == "dbt_incremental":
        return (
            f"+{stage['new_events']:,} events (ingest {stage['ingest_seconds']:.2f}s),"
            " dbt build at T0 + 1 day"
        )
    if name == "dbt_full":
        slowest = ", ".join(
            f"{m.split('.')[-1]} {s:.1f}s" for m, s in list(stage["models"].items())[:3]
        )
        return f"dbt build (models + tests); slowest: {slowest}"
    if name == "pandas_baseline":
        return f"{stage['segments']:,} segment rows from the landing Parquet"
    if name.startswith("ingest"):
        top = ", ".join(
            f"`{label}` {seconds:.1f}s" for label, seconds in list(stage["sql_seconds"].items())[:2]
        )
        return f"{stage['rows_loaded']:,} loaded; SQL: {top}"
    return ""


def postgres_table(size: dict[str, Any]) -> list[str]:
    """A Markdown table of one size's stages on both engines (`--engine postgres`)."""
    postgres = size["postgres"]
    lines = [
        f"PostgreSQL beside DuckDB, {size['events']:,} events (server memory: summed Pss of"
        f" its processes, sampled; database {_number(postgres['database_mb'], 0)} MB)",
        "",
        "| stage | DuckDB s | PostgreSQL s | postgres/duckdb | PostgreSQL events/s"
        " | stage peak RSS MB | server peak MB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, ratio_value in postgres["vs_duckdb"].items():
        if "." in name:  # plan_send's parts: seconds inside the stage
            stage, part = name.split(".")
            seconds = [size["stages"][stage][part], size["stages"][f"{stage}_postgres"][part]]
            lines.append(
                f"| {stage}: {part.removesuffix('_seconds')} | {_number(seconds[0], 2)}"
                f" | {_number(seconds[1], 2)} | {_number(ratio_value, 2)} | | | |"
            )
            continue
        duckdb_stage, stage = size["stages"][name], size["stages"][f"{name}_postgres"]
        lines.append(
            f"| {name} | {_number(duckdb_stage['seconds'], 2)} | {_number(stage['seconds'], 2)}"
            f" | {_number(ratio_value, 2)} | {_number(stage['events_per_s'])}"
            f" | {_number(stage['peak_rss_mb'], 0)}"
            f" | {_number(stage['server_peak_pss_mb'], 0)} |"
        )
    return lines


def summary_lines(report: dict[str, Any]) -> list[str]:
    lines = []
    for size in report["sizes"]:
        lines += [*stage_table(size), ""]
        if "postgres" in size:
            lines += [*postgres_table(size), ""]
    overhead = report["fixed_overhead"]
    lines.append(
        "fixed overhead (tiny data): dbt build {}s, {}s with a full parse; Dagster materialize"
        " of the same {}s (+{}s over plain dbt), definitions load {}s".format(
            _number(overhead.get("dbt_build_seconds"), 2),
            _number(_cold_dbt(overhead), 2),
            _number(overhead.get("dagster_materialize_seconds"), 2),
            _number(overhead.get("dagster_overhead_seconds"), 2),
            _number(overhead.get("dagster_definitions_load_seconds"), 2),
        )
    )
    lines.append(
        "ratios: " + ", ".join(f"{k} {_number(v, 2)}" for k, v in report["ratios"].items())
    )
    send = report["send"]
    lines.append(
        f"send: {send['messages']:,} messages batched at {_number(send['batched_per_s'])}/s;"
        f" one request per message at {_number(send['one_by_one_per_s'])}/s"
        f" ({send['one_by_one_messages']:,} messages)"
    )
    if report["growth_exponent"]:
        lines.append(
            "growth exponent (time ~ events^k): "
            + ", ".join(f"{k} {_number(v, 2)}" for k, v in report["growth_exponent"].items())
        )
    lines.append(f"targets (defined at {TARGET_EVENTS:,} events):")
    for name, target in report["targets"].items():
        verdict = {True: "met", False: "MISSED", None: "n/a"}[target["met"]]
        lines.append(
            f"  {name}: {_number(target['value'], 2)} (limit {_number(target['limit'], 2)})"
            f" {verdict}"
        )
    return lines
