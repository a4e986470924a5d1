"""`bis simulate` end to end: synthetic users, the real pipeline, the measured lift.

Two closed loops (one with a true lift, one A/A) run the real ingest, dbt, planner and outbox
sender; these tests check that the experiment mart recovers what the simulation put in.
The seeds are fixed, so the runs are reproducible. Both loops run on each engine: on DuckDB
the simulation's warehouse is a file in its folder, on PostgreSQL a fresh database given with
`--warehouse-url` (docs/architecture.md §13).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from pipelines.cli import main
from pipelines.lib.engine.url import parse_warehouse_url
from pipelines.lib.simulation import BANNER, SimulationConfig, SimulationResult, run_simulation
from pipelines.lib.simulation.record import (
    MARKER_FILE,
    create_tables,
    prepare_server_warehouse,
)
from pipelines.lib.simulation.responses import received_send_ids
from pipelines.lib.warehouse import Target, connect, open_warehouse
from tests.conftest import ENGINES

# The whole pipeline with dbt, in subprocesses: not in `make check`.
pytestmark = pytest.mark.slow

START = datetime(2026, 10, 5, 12, tzinfo=UTC)
TRUE_LIFT = 0.15


@pytest.fixture(scope="module", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


def _server_database(engine: str, request: pytest.FixtureRequest) -> str | None:
    """A fresh database for a simulation on PostgreSQL (None: DuckDB, a file in its folder)."""
    if engine != "postgres":
        return None
    from tests.support.postgres import fresh_database

    return fresh_database(request.getfixturevalue("postgres_server"))


def _simulate(folder: Path, url: str | None, **config: object) -> SimulationResult:
    result = run_simulation(
        folder,
        SimulationConfig(start=START, **config),  # type: ignore[arg-type]
        now=START,
        warehouse=parse_warehouse_url(url) if url else None,
    )
    assert not result.failed, "\n".join(result.lines)
    return result


def _warehouse_of(result: SimulationResult, url: str | None) -> Target:
    return url or result.data_dir / "warehouse.duckdb"


@pytest.fixture(scope="module")
def lifted_url(engine: str, request: pytest.FixtureRequest) -> str | None:
    return _server_database(engine, request)


@pytest.fixture(scope="module")
def lifted(lifted_url: str | None, tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    folder = tmp_path_factory.mktemp("simulation") / "lifted"
    return _simulate(folder, lifted_url, days=3, users_per_day=1000, true_lift=TRUE_LIFT, seed=11)


@pytest.fixture(scope="module")
def a_a(
    engine: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> SimulationResult:
    folder = tmp_path_factory.mktemp("simulation") / "a_a"
    url = _server_database(engine, request)
    return _simulate(folder, url, days=2, users_per_day=1000, true_lift=0.0, seed=12)


def test_the_interval_covers_the_true_lift_and_excludes_zero(lifted: SimulationResult) -> None:
    row = lifted.experiment
    assert row is not None
    assert row["lift_ci_lower"] <= TRUE_LIFT <= row["lift_ci_upper"]
    assert lifted.covers_true_lift is True
    assert row["lift_ci_lower"] > 0 and row["is_significant"] and row["p_value"] < 0.05
    assert not row["srm_flag"], "holdout assignment should match holdout_percent"
    # About 10% held out, as the sequence says.
    assert 0.07 < row["holdout_users"] / (row["holdout_users"] + row["treatment_users"]) < 0.13


def test_a_a_reports_no_significant_effect(a_a: SimulationResult) -> None:
    row = a_a.experiment
    assert row is not None
    assert row["lift_ci_lower"] <= 0.0 <= row["lift_ci_upper"]
    assert not row["is_significant"] and row["p_value"] >= 0.05
    assert not row["srm_flag"]


@pytest.mark.parametrize("which", ["lifted", "a_a"])
def test_the_mart_counts_exactly_the_outcomes_the_simulation_drew(
    which: str, engine: str, request: pytest.FixtureRequest
) -> None:
    # `engine` parametrizes this test as the fixture it looks up (lifted or a_a) is.
    # Intention to treat: every enrolled user counts in their arm, converted or not.
    result: SimulationResult = request.getfixturevalue(which)
    row, truth = result.experiment, result.truth
    assert row is not None
    assert row["treatment_users"] == truth["treatment"]["users"]
    assert row["holdout_users"] == truth["holdout"]["users"]
    assert row["treatment_converted"] == truth["treatment"]["converted"]
    assert row["holdout_converted"] == truth["holdout"]["converted"]
    days, per_day = result.config.days, result.config.users_per_day
    assert truth["treatment"]["users"] + truth["holdout"]["users"] == days * per_day


def test_only_emails_that_reached_the_outbox_carry_the_lift(
    lifted: SimulationResult, lifted_url: str | None
) -> None:
    con = connect(_warehouse_of(lifted, lifted_url), read_only=True)
    try:
        received = received_send_ids(lifted.data_dir / "outbox")
        sent = {
            r[0]
            for r in con.execute(
                "select send_id from messaging.sends where status = 'sent'"
            ).fetchall()
        }
        assert received == sent and sent
        rows = con.execute(
            "select variant, received_email, min(response_probability), max(response_probability)"
            " from simulation.outcomes group by all"
        ).fetchall()
    finally:
        con.close()
    by_arm = {(variant, got): (lo, hi) for variant, got, lo, hi in rows}
    assert by_arm[("treatment", True)] == (0.278 + TRUE_LIFT, 0.278 + TRUE_LIFT)
    assert by_arm[("holdout", False)] == (0.278, 0.278)
    assert ("holdout", True) not in by_arm  # a held-out user never gets the email


def test_dashboard_and_lines_are_labelled_as_a_simulation(lifted: SimulationResult) -> None:
    assert lifted.lines[0] == BANNER and BANNER in lifted.lines[-8:]
    assert lifted.dashboard is not None
    page = lifted.dashboard.read_text()
    assert "<title>SIMULATION" in page
    assert 'class="simulation"' in page and "true lift +15.0%" in page
    assert (lifted.data_dir / MARKER_FILE).exists()


def test_the_dashboard_asset_carries_the_experiment_table(
    lifted: SimulationResult, lifted_url: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.defs.reporting.assets import dashboard
    from pipelines.defs.resources import WarehouseResource

    monkeypatch.setenv("BIS_DATA_DIR", str(lifted.data_dir))
    monkeypatch.setenv("BIS_AS_OF", "2026-10-11T12:00:00Z")
    resource = WarehouseResource(data_dir=str(lifted.data_dir), warehouse_url=lifted_url or "")
    result = dg.materialize([dashboard], resources={"warehouse": resource})
    assert result.success
    metadata = result.asset_materializations_for_node("dashboard")[0].metadata
    experiments = metadata["experiments"].value
    row = lifted.experiment
    assert row is not None
    assert "| onboarding_momentum |" in experiments and "| __overall__ |" in experiments
    assert f"{row['treatment_converted']}/{row['treatment_users']}" in experiments
    assert "Onboarding conversion" in metadata["headline_kpis"].value


def test_cli_refuses_a_folder_with_real_data(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "warehouse.duckdb").write_bytes(b"")
    code = main(["simulate", "--days", "1", "--true-lift", "0.1", "--data-dir", str(folder)])
    assert code == 1
    assert "not a simulation folder" in capsys.readouterr().err
    assert (folder / "warehouse.duckdb").exists()


def test_cli_rejects_an_impossible_lift(tmp_path: Path, capsys) -> None:
    code = main(
        ["simulate", "--days", "1", "--true-lift", "0.9", "--data-dir", str(tmp_path / "s")]
    )
    assert code == 1
    assert "--true-lift 0.9" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def simulate_args(folder: Path, *extra: str) -> list[str]:
    return ["simulate", "--days", "1", "--true-lift", "0.1", "--data-dir", str(folder), *extra]


def test_cli_refuses_a_server_database_with_real_data(postgres_server, tmp_path: Path, capsys):
    from tests.support.postgres import fresh_database

    url = fresh_database(postgres_server)
    with open_warehouse(url):
        pass  # the migrations' tables: a warehouse that is not a simulation's
    folder = tmp_path / "s"
    code = main(simulate_args(folder, "--warehouse-url", url, "--reset"))
    assert code == 1
    assert "is not a simulation warehouse" in capsys.readouterr().err
    assert not folder.exists()  # refused before anything was written
    with connect(url, read_only=True) as con:
        assert con.execute("select count(*) from messaging.schema_migrations").fetchone()[0] > 0


def test_an_earlier_simulation_on_a_server_is_replaced_only_with_reset(postgres_server) -> None:
    from tests.support.postgres import fresh_database

    url = parse_warehouse_url(fresh_database(postgres_server))
    with open_warehouse(url) as con:
        create_tables(con)
        con.execute("create table public.leftover as select 1 as x")
    with pytest.raises(ValueError, match="holds an earlier simulation"):
        prepare_server_warehouse(url, reset=False)
    prepare_server_warehouse(url, reset=True, dry_run=True)
    with connect(url, read_only=True) as con:
        assert con.execute("select count(*) from simulation.runs").fetchone() == (0,)

    prepare_server_warehouse(url, reset=True)

    with connect(url, read_only=True) as con:
        left = con.execute(
            "select table_schema, table_name from information_schema.tables"
            " where table_schema not in ('pg_catalog', 'information_schema')"
        ).fetchall()
    assert left == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://sim:pw@127.0.0.1:1/bis", "is the configured warehouse"),
        ("duckdb:///tmp/elsewhere.duckdb", "expected a postgresql:// URL"),
    ],
)
def test_cli_refuses_the_configured_warehouse_and_a_duckdb_url(
    url: str, message: str, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BIS_ENV", "dev")
    monkeypatch.setenv("BIS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("BIS_WAREHOUSE_URL", "postgresql://bis:secret@127.0.0.1:1/bis")
    folder = tmp_path / "s"
    code = main(simulate_args(folder, "--warehouse-url", url))
    assert code == 1
    assert message in capsys.readouterr().err
    assert not folder.exists()
