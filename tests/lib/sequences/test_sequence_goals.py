"""Sequence goals as the experiment marts time them, and the dbt defaults kept equal to them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from pipelines.lib.dbt import DBT_PROJECT_DIR, dbt_executable
from pipelines.lib.sequences import load_sequences
from pipelines.lib.sequences.goals import GoalError, experiment_vars, measured_goal
from pipelines.lib.settings import SEQUENCES_DIR
from tests.lib.sequences.test_sequence_check import check, edit, folder, line_of  # noqa: F401


def _by_id() -> dict:
    return {s.id: s for s in load_sequences(SEQUENCES_DIR)}


def test_each_goal_family_is_recognised() -> None:
    sequences = _by_id()
    assert measured_goal(sequences["onboarding_momentum"]) == {
        "goal": "onboarding_completed",
        "within_days": 14,
    }
    assert measured_goal(sequences["never_started_kickoff"])["goal"] == "onboarding_started"
    dormant = measured_goal(sequences["dormant_reactivation"])
    assert dormant == {"goal": "activity", "condition": "(events_last_7d >= 3)", "within_days": 14}
    assert measured_goal(sequences["lapsed_winback"])["condition"] == "(NOT is_inactive)"


def test_a_goal_that_cannot_be_timed_is_refused() -> None:
    sequence = _by_id()["dormant_reactivation"]
    untimed = sequence.model_copy(
        update={"goal": sequence.goal.model_copy(update={"condition": "plan = 'pro'"})}
    )
    with pytest.raises(GoalError, match="cannot be timed"):
        measured_goal(untimed)


def test_sequences_check_reports_an_untimed_goal_at_its_line(folder: Path) -> None:  # noqa: F811
    path = folder / "dormant.yaml"
    edit(path, 'condition: "events_last_7d >= 3"', "condition: \"plan = 'pro'\"")
    problems = check(folder)
    assert any(
        p.startswith(f"{path}:{line_of(path, 'goal:')}:") and "cannot be timed" in p
        for p in problems
    ), problems


@pytest.mark.slow  # runs `dbt compile`
def test_dbt_defaults_equal_the_sequence_files(tmp_path: Path) -> None:
    # A plain `dbt build` (no vars) must measure the same goals as the pipeline does.
    macro = (
        "{{ tojson({'sequence_goals': sequence_goals(),"
        " 'holdout_percent_by_sequence': holdout_percent_by_sequence()}) }}"
    )
    completed = subprocess.run(
        [dbt_executable(), "compile", "--quiet", "--profiles-dir", ".", "--inline", macro,
         "--target-path", str(tmp_path / "target")],
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, "BIS_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
    )  # fmt: skip
    defaults = json.loads(completed.stdout.strip().splitlines()[-1])
    assert defaults == experiment_vars(load_sequences(SEQUENCES_DIR))
