"""The benchmark harness: `make bench` (BENCH_EVENTS=10000000 for the large run).

    .venv/bin/python bench/run.py --events 1000000            # one size
    .venv/bin/python bench/run.py --sizes 1000000,3000000,10000000
    .venv/bin/python bench/run.py --events 20000 --check      # smoke run (tests/bench)
    .venv/bin/python bench/run.py --engine postgres           # also on PostgreSQL

Per size: generate → ingest JSONL → ingest Parquet → dbt build → the floor SQL → the pandas
baseline → message_plan + send (batched, then one request per message) → one more day of
events and the incremental dbt build. Each stage runs in a fresh process (bench/stages.py):
its seconds are timed inside it, its peak RSS comes from os.wait4, i.e. the largest resident
set of any process in its tree (dbt runs in a child process of the stage). Results go to
bench/results/latest.json and a table is printed; `--check` also verifies that the floor
equals the marts and pandas equals marts.user_segments, and exits 1 when they differ.

`--engine postgres` runs ingest, dbt (full and incremental), plan and send again on a
throwaway PostgreSQL server (bench/postgres.py), on the same files and clocks, right after
the DuckDB stages of each size: stages `<stage>_postgres`, with the server's own peak memory
and the ratios postgres/duckdb in the results' "postgres" section.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `bench` and `pipelines` importable
    sys.path.insert(0, str(ROOT))

from bench import report  # noqa: E402
from bench.postgres import (  # noqa: E402
    POSTGRES_STAGES,
    BenchServer,
    MemorySampler,
    bench_server,
    postgres_checks,
    postgres_summary,
)
from pipelines.lib.settings import subprocess_environ  # noqa: E402

RESULTS = ROOT / "bench" / "results"
DEFAULT_WORK = ROOT / "bench" / ".work"
# T0, the clock of the full build and the plan: a Monday at 16:00 UTC, daytime in the
# Americas, Europe and Africa, where most simulated users live (quiet hours defer the rest).
T0 = "2026-11-02T16:00:00+00:00"
LARGE_RUN = 10_000_000
SIZE_STAGES = (
    "generate",
    "ingest_jsonl",
    "ingest_parquet",
    "ingest_floor",
    "backdate",
    "dbt_full",
    "floor_sql",
    "pandas_baseline",
    "plan_send",
    "send_one_by_one",
    "dbt_incremental",
)
CHECK_STAGES = ("floor_check_incremental",)
UNREPORTED = ("backdate", "backdate_postgres", *CHECK_STAGES)
ENGINES = ("duckdb", "postgres")


class StageFailed(RuntimeError):
    pass


def run_stage(name: str, config: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Run one stage in a fresh process; its result plus peak RSS (MB) and wall seconds."""
    folder.mkdir(parents=True, exist_ok=True)
    config_path = folder / f"{name}.json"
    config_path.write_text(json.dumps(config))
    env = subprocess_environ(
        {
            "PYTHONPATH": str(ROOT),
            "BIS_ENV": "dev",
            # Nothing may touch ./data: anything reading the settings sees the bench warehouse.
            "BIS_DATA_DIR": str(Path(config["work"]) / "warehouse"),
        },
        without=("BIS_AS_OF", "BIS_WAREHOUSE_URL"),
    )
    log_path = config_path.with_suffix(".log")
    started = time.perf_counter()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.stages", name, str(config_path)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        # wait4 reports the child's peak RSS, including its own children it waited for (dbt).
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if process.returncode != 0:
        tail = log_path.read_text(errors="replace")[-6000:]
        raise StageFailed(f"stage {name} failed (exit {process.returncode}); its log:\n{tail}")
    result = json.loads(config_path.with_suffix(".result.json").read_text())
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux reports KiB
    result["wall_seconds"] = round(wall, 3)
    return result


class SendGridServer:
    """bench/sendgrid_server.py in its own process, for the send stages."""

    def __enter__(self) -> SendGridServer:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.sendgrid_server"],
            cwd=ROOT,
            env=subprocess_environ({"PYTHONPATH": str(ROOT)}),
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise StageFailed("the local SendGrid server did not start")
        self.info = json.loads(line)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def run_size(
    events: int,
    args: argparse.Namespace,
    server: SendGridServer,
    postgres: BenchServer | None = None,
) -> dict[str, Any]:
    work = args.work_dir / f"events_{events}"
    shutil.rmtree(work, ignore_errors=True)
    config = {
        "work": str(work),
        "t0": T0,
        "events": events,
        "check": args.check,
        "sendgrid_url": server.info["url"],
        "sendgrid_api_key": server.info["api_key"],
        "one_by_one_limit": args.one_by_one_limit,
    }
    stages: dict[str, dict[str, Any]] = {}
    names = SIZE_STAGES + (CHECK_STAGES if args.check else ())
    for name in names:
        stages[name] = run_stage(name, config, work / "stages")
        _progress(f"{events:,} events", name, stages[name])
    if postgres is not None:
        stages.update(run_postgres_stages(events, config, work, postgres))
    generated = stages["generate"]
    size = {
        "events": generated["events"],
        "requested_events": events,
        "users": generated["users"],
        "increment_events": generated["increment_events"],
        "stages": {
            name: report.stage_entry(result)
            for name, result in stages.items()
            if name not in UNREPORTED
        },
        "checks": _checks(stages) if args.check else None,
    }
    if postgres is not None:
        size["postgres"] = postgres_summary(size["stages"])
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return size


def run_postgres_stages(
    events: int, config: dict[str, Any], work: Path, postgres: BenchServer
) -> dict[str, dict[str, Any]]:
    """The PostgreSQL stages of one size, each with the server's peak memory meanwhile."""
    database = f"bench_{events}"
    config = {
        **config,
        "postgres_url": postgres.fresh_database(database),
        "postgres_jsonl_url": postgres.fresh_database(f"{database}_jsonl"),
    }
    stages = {}
    try:
        for name in POSTGRES_STAGES:
            with MemorySampler(postgres) as sampler:
                result = run_stage(name, config, work / "stages")
            result["server_peak_pss_mb"] = round(sampler.peak_mb, 1)
            stages[name] = result
            _progress(f"{events:,} events", name, result)
            if name == "ingest_jsonl_postgres":  # only its speed matters, as on DuckDB
                postgres.drop_database(f"{database}_jsonl")
        stages["dbt_incremental_postgres"]["database_mb"] = round(postgres.database_mb(database), 1)
    finally:
        postgres.drop_database(f"{database}_jsonl")
        postgres.drop_database(database)
    return stages


def _progress(label: str, name: str, result: dict[str, Any]) -> None:
    server = result.get("server_peak_pss_mb")
    print(
        f"[bench] {label}: {name} {result['seconds']:.2f}s, peak RSS"
        f" {result['peak_rss_mb']:.0f} MB"
        + (f", server peak {server:.0f} MB" if server is not None else ""),
        file=sys.stderr,
        flush=True,
    )


def _checks(stages: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    checks = []
    for stage in ("floor_sql", "floor_check_incremental", "pandas_baseline"):
        for item in stages[stage].get("check", []):
            checks.append({"stage": stage, **item})
    loaded = (stages["ingest_jsonl"]["rows_loaded"], stages["ingest_parquet"]["rows_loaded"])
    checks.append(
        {
            "stage": "ingest",
            "table": "raw.events",
            "ok": loaded[0] == loaded[1],
            "report": f"raw.events: JSONL loaded {loaded[0]}, Parquet loaded {loaded[1]}",
        }
    )
    if "plan_send_postgres" in stages:
        checks += postgres_checks(stages)
    return checks


def measure_overhead(args: argparse.Namespace) -> dict[str, Any]:
    """dbt's and Dagster's fixed costs, on a tiny warehouse (200 users)."""
    work = args.work_dir / "overhead"
    shutil.rmtree(work, ignore_errors=True)
    config = {"work": str(work), "t0": T0}
    dbt = run_stage("overhead_dbt", config, work / "stages")
    _progress("tiny data", "dbt build", dbt)
    # The definitions load dbt's manifest and never parse it themselves: bring it up to date.
    from pipelines.lib.dbt_manifest import ensure_manifest

    ensure_manifest()
    dagster = run_stage("overhead_dagster", config, work / "stages")
    _progress("tiny data", "Dagster materialize", dagster)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "tiny_events": dbt["events"],
        "dbt_build_seconds": round(dbt["seconds"], 3),
        "dbt_build_cold_seconds": round(dbt["cold_seconds"], 3),
        "dbt_build_peak_rss_mb": round(dbt["peak_rss_mb"], 1),
        "dagster_materialize_seconds": round(dagster["seconds"], 3),
        # Dagster's run parses the project in full (its own target dir): compare it with the
        # cold dbt build.
        "dagster_overhead_seconds": round(dagster["seconds"] - dbt["cold_seconds"], 3),
        "dagster_definitions_load_seconds": round(dagster["definitions_load_seconds"], 3),
        "dagster_peak_rss_mb": round(dagster["peak_rss_mb"], 1),
    }


def assemble(
    sizes: list[dict[str, Any]],
    overhead: dict[str, Any],
    argv: list[str],
    server_settings: dict[str, Any] | None = None,
) -> dict:
    main = max(sizes, key=lambda size: size["events"])
    stages = main["stages"]
    ratios = report.ratios(stages, overhead)
    growth = {}
    # send_one_by_one sends a fixed sample whatever the size: no growth to speak of.
    for name in (*report.REPORTED_STAGES, "generate"):
        exponent = report.growth_exponent(
            [(size["events"], size["stages"][name]["seconds"]) for size in sizes]
        )
        if exponent is not None:
            growth[name] = exponent
    plan_send, one_by_one = stages["plan_send"], stages["send_one_by_one"]
    result = {
        "events": main["events"],
        "users": main["users"],
        "machine": report.machine(),
        "stages": stages,
        "ratios": ratios,
        "send": {
            "messages": plan_send["messages"],
            "batched_per_s": plan_send["batched_per_s"],
            "one_by_one_per_s": one_by_one["one_by_one_per_s"],
            "one_by_one_messages": one_by_one["messages"],
            "batched_requests": plan_send["requests"],
        },
        "growth_exponent": growth,
        "fixed_overhead": overhead,
        "targets": report.targets(stages, ratios, overhead),
        "sizes": sizes,
        "code": report.code_version(ROOT),
        "as_of": T0,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["bench/run.py", *argv]),
    }
    if "postgres" in main:
        result["postgres"] = {**main["postgres"], "server": server_settings}
    return result


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--events",
        type=int,
        default=1_000_000,
        help="history events (default 1,000,000; `make bench` passes $BENCH_EVENTS); from 10M"
        " on, the run also measures 1/10 and 3/10 of it for the growth exponents",
    )
    parser.add_argument("--sizes", help="comma-separated event counts (overrides --events)")
    parser.add_argument("--check", action="store_true", help="verify floor/pandas == marts")
    parser.add_argument("--out", type=Path, help="results file (default results/latest.json)")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument("--one-by-one-limit", type=int, default=2000)
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="duckdb",
        help="postgres: also run ingest, dbt, plan and send on a throwaway PostgreSQL server",
    )
    args = parser.parse_args(argv)
    if args.sizes:
        args.size_list = sorted(int(s) for s in args.sizes.split(","))
    elif args.events >= LARGE_RUN:
        args.size_list = [args.events // 10, args.events * 3 // 10, args.events]
    else:
        args.size_list = [args.events]
    args.work_dir = args.work_dir.resolve()
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    overhead = measure_overhead(args)
    postgres_server = bench_server() if args.engine == "postgres" else nullcontext()
    with SendGridServer() as server, postgres_server as postgres:
        sizes = [run_size(events, args, server, postgres) for events in args.size_list]
        server_settings = postgres.settings() if postgres is not None else None
    result = assemble(sizes, overhead, argv, server_settings)
    out = args.out or RESULTS / "latest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if args.out is None and result["events"] >= LARGE_RUN * 0.9:
        (RESULTS / "10m.json").write_text(out.read_text())
    print("\n".join(report.summary_lines(result)))
    print(f"results: {out}")
    if args.check:
        return verify(sizes)
    return 0


def verify(sizes: list[dict[str, Any]]) -> int:
    failed = [c for size in sizes for c in size["checks"] if not c["ok"]]
    for size in sizes:
        for check in size["checks"]:
            print(f"check [{size['events']:,} events, {check['stage']}] {check['report']}")
    if failed:
        names = ", ".join(sorted({f"{c['stage']}:{c['table']}" for c in failed}))
        print(f"CHECK FAILED: rows differ in {names}", file=sys.stderr)
        return 1
    engines = " and PostgreSQL == DuckDB" if any("postgres" in size for size in sizes) else ""
    print(
        "check: floor == marts, pandas == marts.user_segments, JSONL == Parquet"
        f"{engines}: all identical"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
