"""`bis simulate` end to end: synthetic users, the real pipeline, the measured lift.

Two closed loops (one with a true lift, one A/A) run the real ingest, dbt, planner and outbox
sender; these tests check that the experiment mart recovers what the simulation put in.
The seeds are fixed, so the runs are reproducible.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from pipelines.cli import main
from pipelines.lib.simulation import BANNER, SimulationConfig, SimulationResult, run_simulation
from pipelines.lib.simulation.record import MARKER_FILE
from pipelines.lib.simulation.responses import received_send_ids

# The whole pipeline with dbt, in subprocesses: not in `make check`.
pytestmark = pytest.mark.slow

START = datetime(2026, 10, 5, 12, tzinfo=UTC)
TRUE_LIFT = 0.15


def _simulate(folder: Path, **config: object) -> SimulationResult:
    result = run_simulation(
        folder,
        SimulationConfig(start=START, **config),
        now=START,  # type: ignore[arg-type]
    )
    assert not result.failed, "\n".join(result.lines)
    return result


@pytest.fixture(scope="module")
def lifted(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    folder = tmp_path_factory.mktemp("simulation") / "lifted"
    return _simulate(folder, days=3, users_per_day=1000, true_lift=TRUE_LIFT, seed=11)


@pytest.fixture(scope="module")
def a_a(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    folder = tmp_path_factory.mktemp("simulation") / "a_a"
    return _simulate(folder, days=2, users_per_day=1000, true_lift=0.0, seed=12)


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
    which: str, request: pytest.FixtureRequest
) -> None:
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


def test_only_emails_that_reached_the_outbox_carry_the_lift(lifted: SimulationResult) -> None:
    con = duckdb.connect(str(lifted.data_dir / "warehouse.duckdb"), read_only=True)
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
    lifted: SimulationResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.defs.reporting.assets import dashboard
    from pipelines.defs.resources import WarehouseResource

    monkeypatch.setenv("BIS_DATA_DIR", str(lifted.data_dir))
    monkeypatch.setenv("BIS_AS_OF", "2026-10-11T12:00:00Z")
    result = dg.materialize(
        [dashboard], resources={"warehouse": WarehouseResource(data_dir=str(lifted.data_dir))}
    )
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
