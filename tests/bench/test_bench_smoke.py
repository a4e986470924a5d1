"""The benchmark harness cannot rot: a tiny `bench/run.py --events 20000 --check` run.

The run checks that the hand-written floor SQL gives the marts' rows and the pandas baseline
gives marts.user_segments; the unit tests below prove that such a check can fail. The
`--engine postgres` run also puts ingest, dbt, plan and send on a throwaway PostgreSQL server
and checks that both engines load the same rows and plan the same messages.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from bench.compare import compare_relations
from bench.report import growth_exponent
from bench.run import verify
from tests.dbt import pg_throwaway
from tests.support.postgres import postgres_required

ROOT = Path(__file__).resolve().parents[2]
STAGES = (
    "ingest_jsonl",
    "ingest_parquet",
    "dbt_full",
    "dbt_incremental",
    "plan_send",
    "floor_sql",
    "pandas_baseline",
)


POSTGRES_STAGES = ("ingest_jsonl", "ingest_parquet", "dbt_full", "plan_send", "dbt_incremental")


def smoke_run(tmp_path: Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    """`bench/run.py --events 20000 --check` into tmp_path: the process and its results."""
    out = tmp_path / "latest.json"
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--events",
            "20000",
            "--check",
            "--out",
            str(out),
            "--work-dir",
            str(tmp_path / "work"),
            *extra,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-5000:] + completed.stderr[-5000:]
    return completed, json.loads(out.read_text())


@pytest.mark.slow
def test_smoke_run_writes_the_results_shape_and_verifies_floor_and_pandas(tmp_path: Path) -> None:
    completed, result = smoke_run(tmp_path)

    assert {"events", "users", "machine", "stages", "ratios", "send", "growth_exponent"} <= set(
        result
    )
    assert 15_000 < result["events"] < 25_000
    for name in STAGES:
        stage = result["stages"][name]
        assert {"seconds", "events_per_s", "peak_rss_mb"} <= set(stage), name
        assert stage["seconds"] > 0 and stage["peak_rss_mb"] > 0, name
    assert result["stages"]["ingest_parquet"]["events_per_s"] > 0
    assert {"dbt_full_vs_floor", "incremental_vs_full", "pandas_vs_pipeline"} <= set(
        result["ratios"]
    )
    send = result["send"]
    assert {"messages", "batched_per_s", "one_by_one_per_s"} <= set(send)
    assert send["messages"] > 0 and send["batched_per_s"] > 0 and send["one_by_one_per_s"] > 0
    assert result["fixed_overhead"]["dbt_build_seconds"] > 0

    checks = result["sizes"][0]["checks"]
    verified = {(c["stage"], c["table"]) for c in checks if c["ok"]}
    assert {
        ("floor_sql", "dim_users"),
        ("floor_sql", "user_segments"),
        ("floor_sql", "kpi_daily"),
        ("floor_check_incremental", "user_segments"),
        ("pandas_baseline", "user_segments"),
    } <= verified
    assert all(c["ok"] for c in checks), [c["report"] for c in checks if not c["ok"]]
    assert "check: floor == marts" in completed.stdout
    assert "postgres" not in result  # DuckDB alone unless asked


@pytest.mark.slow
def test_postgres_smoke_run_reports_the_postgres_stages_beside_duckdb(tmp_path: Path) -> None:
    if pg_throwaway.find_bindir() is None:
        reason = "PostgreSQL server binaries not found; `make test` installs them"
        if postgres_required():
            pytest.fail(f"BIS_REQUIRE_POSTGRES is set: {reason}", pytrace=False)
        pytest.skip(reason)
    completed, result = smoke_run(tmp_path, "--engine", "postgres")

    for name in POSTGRES_STAGES:
        duckdb_stage, stage = result["stages"][name], result["stages"][f"{name}_postgres"]
        assert {"seconds", "events_per_s", "peak_rss_mb", "server_peak_pss_mb"} <= set(stage)
        assert stage["seconds"] > 0 and stage["peak_rss_mb"] > 0, name
        assert stage["server_peak_pss_mb"] > 0, name
        assert stage.get("events") == duckdb_stage.get("events"), name
    postgres = result["postgres"]
    assert set(postgres["vs_duckdb"]) >= set(POSTGRES_STAGES)
    assert all(value > 0 for value in postgres["vs_duckdb"].values())
    assert postgres["server"]["server_version"] and postgres["database_mb"] > 0
    assert result["stages"]["plan_send_postgres"]["messages"] > 0

    checks = result["sizes"][0]["checks"]
    compared = {c["stage"] for c in checks if c["ok"]}
    assert {"ingest_parquet_postgres", "plan_send_postgres", "dbt_incremental_postgres"} <= compared
    assert all(c["ok"] for c in checks), [c["report"] for c in checks if not c["ok"]]
    assert "PostgreSQL beside DuckDB" in completed.stdout


def test_compare_finds_a_changed_row_and_names_the_table() -> None:
    con = duckdb.connect()
    rows = "select * from (values (1, 'a', 0.5::double), (2, 'b', {}::double)) v(id, k, rate)"
    con.execute(f"create table expected as {rows.format(1.0)}")
    con.execute("create table same as select * from expected")
    con.execute(f"create table changed as {rows.format(1.1)}")

    assert compare_relations(con, "t", "expected", "same").ok
    diff = compare_relations(con, "kpi_daily", "expected", "changed")
    assert not diff.ok
    assert (diff.missing_count, diff.unexpected_count) == (1, 1)
    assert diff.describe().startswith("kpi_daily: DIFFERENT")
    assert "(2, 'b', 1.1)" in diff.describe()


def test_compare_tolerates_float_noise_but_not_a_missing_column() -> None:
    con = duckdb.connect()
    con.execute("create table expected as select 1 as id, 0.1::double + 0.2::double as rate")
    con.execute("create table noisy as select 1 as id, 0.3::double as rate")
    con.execute("create table narrow as select 1 as id")

    assert compare_relations(con, "t", "expected", "noisy").ok
    missing = compare_relations(con, "t", "expected", "narrow")
    assert not missing.ok and "rate" in missing.describe()


def test_verify_fails_when_a_check_failed(capsys: pytest.CaptureFixture[str]) -> None:
    failing = {"stage": "pandas_baseline", "table": "user_segments", "ok": False, "report": "x"}
    passing = {**failing, "ok": True}
    assert verify([{"events": 10, "checks": [passing]}]) == 0
    assert verify([{"events": 10, "checks": [passing, failing]}]) == 1
    assert "pandas_baseline:user_segments" in capsys.readouterr().err


def test_growth_exponent_is_the_log_log_slope() -> None:
    assert growth_exponent([(1e6, 10.0), (1e7, 100.0)]) == 1.0
    assert growth_exponent([(1e6, 10.0), (3e6, 10.0), (1e7, 10.0)]) == 0.0
    assert growth_exponent([(1e6, 10.0)]) is None
