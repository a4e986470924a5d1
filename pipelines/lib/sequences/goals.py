"""How each sequence's goal is measured in the warehouse, for the experiment marts.

A goal condition is a predicate over the marts as they are now; an experiment needs the moment
it first became true. Two families can be timed from events: onboarding progress (the step
timestamps) and activity over the trailing 7 and 14 days (tracked events). `experiment_vars`
turns the sequence files into the dbt vars `sequence_goals` and `holdout_percent_by_sequence`
that int_sequence_enrollment_outcomes and fct_sequence_experiments read.
"""

from __future__ import annotations

from collections.abc import Iterable

from pipelines.lib.sequences.conditions import condition_problems, condition_sql
from pipelines.lib.sequences.models import Sequence

# Onboarding goals, by their normalised condition.
_ONBOARDING_GOALS = {
    condition_sql("steps_completed = 4"): "onboarding_completed",
    condition_sql("steps_completed >= 1"): "onboarding_started",
}
# What an activity goal may refer to: counts of tracked events before the moment it is checked.
ACTIVITY_COLUMNS = ("events_last_7d", "events_prev_7d", "is_inactive")


class GoalError(ValueError):
    """A goal condition the experiment marts cannot time."""


def measured_goal(sequence: Sequence) -> dict[str, object]:
    """The `sequence_goals` entry for one sequence: kind, window and, for activity, the SQL."""
    condition = sequence.goal.condition
    normalised = condition_sql(condition)
    entry: dict[str, object] = {"within_days": sequence.goal.within_days}
    if normalised in _ONBOARDING_GOALS:
        return {"goal": _ONBOARDING_GOALS[normalised], **entry}
    if not condition_problems(condition, ACTIVITY_COLUMNS):
        return {"goal": "activity", "condition": normalised, **entry}
    raise GoalError(
        f"goal condition {condition!r} cannot be timed for the experiment marts: use"
        " 'steps_completed = 4', 'steps_completed >= 1', or a condition over "
        + ", ".join(ACTIVITY_COLUMNS)
    )


def experiment_vars(sequences: Iterable[Sequence]) -> dict[str, dict]:
    """dbt vars for the experiment models, from the sequence files."""
    sequences = list(sequences)
    return {
        "sequence_goals": {s.id: measured_goal(s) for s in sequences},
        "holdout_percent_by_sequence": {s.id: s.holdout_percent for s in sequences},
    }
