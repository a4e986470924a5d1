"""Conditions: what the whitelist lets through, how it is re-rendered, what it refuses."""

from __future__ import annotations

import duckdb
import pytest

from pipelines.lib.sequences import ConditionError, condition_problems, condition_sql

COLUMNS = {"steps_completed", "events_last_7d", "events_prev_7d", "lifecycle_stage", "name"}


@pytest.mark.parametrize(
    ("expression", "sql"),
    [
        ("steps_completed between 1 and 3", "(steps_completed BETWEEN 1 AND 3)"),
        ("steps_completed != 4 or x is not null", "(steps_completed <> 4 OR NOT x IS NULL)"),
        ("lifecycle_stage in ('dormant','lapsed')", "(lifecycle_stage IN ('dormant', 'lapsed'))"),
        ("coalesce(events_last_7d, 0) >= 3 -- back", "(COALESCE(events_last_7d, 0) >= 3)"),
        ("events_last_7d < 0.5 * events_prev_7d", "(events_last_7d < 0.5 * events_prev_7d)"),
        ("not (a = 1 or b = 2) and c", "(NOT (a = 1 OR b = 2) AND c)"),
    ],
)
def test_condition_sql_round_trip(expression: str, sql: str) -> None:
    assert condition_sql(expression) == sql
    # Re-rendering is stable: the output, unwrapped, renders to itself.
    assert condition_sql(sql) == f"({sql})"


def test_condition_sql_keeps_precedence_when_embedded() -> None:
    sql = condition_sql("steps_completed = 1 or steps_completed = 2")
    rows = (
        duckdb.connect()
        .execute(
            f"select count(*) from (select unnest([0, 1, 2, 3]) as steps_completed) t "
            f"where steps_completed > 1 and {sql}"
        )
        .fetchone()
    )
    assert rows == (1,)  # without the parentheses 1 would match too


def test_condition_sql_can_qualify_columns() -> None:
    assert condition_sql("steps_completed = 4 and name is null", qualifier="u") == (
        "(u.steps_completed = 4 AND u.name IS NULL)"
    )


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("steps_completed = 4; drop table x", "semicolons are not allowed"),
        ("steps_completed = 4;", "semicolons are not allowed"),
        ("select 1", "SELECT is not allowed"),
        ("steps_completed in (select 1)", "subqueries are not allowed"),
        ("exists (select 1)", "subqueries are not allowed"),
        ("sum(events_last_7d) > 1", "aggregate function 'sum' is not allowed"),
        ("row_number() over () = 1", "window functions are not allowed"),
        ("md5(name) = 'x'", "function 'md5' is not allowed"),
        ("current_timestamp > name", "'current_timestamp' reads the wall clock"),
        ("x.steps_completed = 1", "qualified column 'x.steps_completed' is not allowed"),
        ("steps_completed + 1", "must be a boolean expression"),
        ("steps_completed >=", "cannot parse the condition: the expression is incomplete"),
        ("name = 'unterminated", "cannot parse the condition"),
        ("   ", "the condition is empty"),
        ("steps_completed = ?", "parameters are not allowed"),
    ],
)
def test_refused_conditions(expression: str, problem: str) -> None:
    problems = condition_problems(expression, COLUMNS)
    assert len(problems) == 1 and problem in problems[0], problems
    with pytest.raises(ConditionError, match="invalid condition"):
        condition_sql(expression)


def test_unknown_columns_get_the_nearest_name_and_a_quoting_hint() -> None:
    assert condition_problems("step_completed = 1 and events_last7d > 0", COLUMNS) == [
        "unknown column 'step_completed'; did you mean 'steps_completed'?",
        "unknown column 'events_last7d'; did you mean 'events_last_7d'?",
    ]
    assert condition_problems('lifecycle_stage = "dormant"', COLUMNS) == [
        "unknown column 'dormant' (text values take 'single quotes')"
    ]
    # Without a column list only the structure is checked.
    assert condition_problems("anything = 1") == []


def test_allowed_functions_and_literals_pass() -> None:
    for expression in (
        "abs(events_last_7d - events_prev_7d) > 2",
        "least(events_last_7d, 3) = 3 and greatest(events_prev_7d, 1) > 0",
        "lower(name) like 'a%' or upper(name) ilike 'B%' or length(name) > 3",
        "round(events_last_7d / nullif(events_prev_7d, 0), 1) < 0.5",
        "date_diff('day', lifecycle_stage, name) > 1",
        "events_last_7d is distinct from events_prev_7d",
        "cast(events_last_7d as double) > 1.5 and name is not null and true",
    ):
        assert condition_problems(expression, COLUMNS) == [], expression
