"""The hand-made dataset through `dbt build`, against values computed by hand.

Story of each user: fixtures/make_events.py. T = as_of = 2026-11-24 12:00 UTC (a Tuesday).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

import pytest

from pipelines.lib.dbt import DBT_PROJECT_DIR

T = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)  # as_of of the build (conftest.AS_OF)
UTC_MONDAY_OF_T = datetime(2026, 11, 23, tzinfo=UTC)


def ago(days: float = 0, hours: float = 0, seconds: float = 0) -> datetime:
    return T - timedelta(days=days, hours=hours, seconds=seconds)


# user: steps_completed, is_converted, is_inactive, lifecycle_stage, nurture_segment, qualified_at
EXPECTED_USERS = {
    "u01": (4, True, False, "activated", None, None),
    "u02": (0, False, True, "lapsed", "lapsed", T),  # last active exactly T - 30d
    "u03": (4, True, True, "dormant", "dormant", ago(30, seconds=-1) + timedelta(days=7)),
    "u04": (4, True, True, "dormant", "dormant", T),  # last active exactly T - 7d
    "u05": (4, True, False, "activated", None, None),  # last active T - 7d + 1s
    "u06": (2, False, False, "onboarding", "stalled", T),  # last step exactly T - 48h
    "u07": (1, False, False, "onboarding", None, None),  # last step T - 48h + 1s
    "u08": (0, False, False, "new", "never_started", T),  # signed up exactly T - 24h
    "u09": (0, False, False, "new", None, None),  # signed up T - 24h + 1s
    "u10": (4, True, False, "activated", "declining", UTC_MONDAY_OF_T),  # 5 -> 2 events
    "u11": (4, True, False, "activated", None, None),  # 6 -> 3 events: exactly half
    "u12": (4, False, False, "activated", None, None),  # first step after the window
    "u13": (4, True, False, "activated", None, None),  # step 4 exactly at signup + 14d
    "u14": (4, False, False, "activated", None, None),  # step 4 at signup + 14d + 1s
}

# user: signed_up_at, last_active_at, events_last_7d, events_prev_7d
EXPECTED_ACTIVITY = {
    "u01": (ago(20), ago(hours=1), 4, 0),  # the view at T + 1h is after as_of
    "u02": (ago(40), ago(30), 0, 0),
    "u03": (ago(45), ago(30, seconds=-1), 0, 0),
    "u04": (ago(25), ago(7), 0, 5),  # T - 7d belongs to (T - 14d, T - 7d]
    "u05": (ago(16), ago(7, seconds=-1), 1, 0),
    "u06": (ago(10), ago(2), 1, 2),
    "u07": (ago(3), ago(2, seconds=-1), 1, 0),  # no Signed Up: first event (an identify)
    "u08": (ago(1), ago(1), 1, 0),
    "u09": (ago(1, seconds=-1), ago(1, seconds=-1), 2, 1),  # + stitched anonymous events
    "u10": (ago(60), ago(2), 2, 5),
    "u11": (ago(60), ago(1), 3, 6),
    "u12": (ago(35), ago(2), 1, 0),
    "u13": (ago(14), T, 1, 3),  # the step at exactly T counts; signup at T - 14d does not
    "u14": (ago(20), ago(6, seconds=-1), 1, 0),
}

# user: email, name, timezone, has_valid_timezone, is_admin
EXPECTED_TRAITS = {
    "u01": ("ada@example.com", "Ada", "America/New_York", True, True),  # email updated later
    "u02": ("u02@example.com", None, "Europe/Paris", True, False),
    "u03": (None, None, "UTC", False, False),  # never identified
    "u05": ("u05@example.com", None, "UTC", False, False),  # timezone ''
    "u07": ("u07@example.com", None, "Asia/Tokyo", True, False),
    "u08": ("u08@example.com", None, "UTC", False, False),  # GMT+25
    "u09": ("u09@example.com", None, "UTC", False, False),  # Mars/Olympus
}

# user: steps_completed, next_step_name, percent_complete, active_days_last_7,
#       current_streak_days, progress_percentile
EXPECTED_PROGRESS = {
    "u01": (4, None, 100.0, 4, 4, 0.0),  # Nov 21-24; tied with u05, u14 (week of Nov 2)
    "u02": (0, "Profile Completed", 0.0, 0, 0, 0.0),
    "u06": (2, "Teammate Invited", 50.0, 1, 0, 0.0),  # below u13 in the week of Nov 9
    "u07": (1, "First Project Created", 25.0, 1, 0, 0.0),
    "u08": (0, "Profile Completed", 0.0, 1, 1, 0.0),  # streak through yesterday
    "u10": (4, None, 100.0, 2, 0, 0.0),  # last active Nov 22
    "u11": (4, None, 100.0, 3, 3, 0.0),  # Nov 21-23
    "u13": (4, None, 100.0, 1, 1, 100.0),  # above u06 in the week of Nov 9
}


def test_build_runs_models_data_tests_and_unit_tests(handmade_build):
    _, results = handmade_build
    kinds = [result["unique_id"].split(".")[0] for result in results]
    model_files = list((DBT_PROJECT_DIR / "models").rglob("*.sql"))
    assert kinds.count("model") == len(model_files) >= 21
    assert kinds.count("unit_test") >= 11
    assert kinds.count("test") >= 80  # data tests, generic and singular


def test_only_identified_users_known_at_as_of(handmade_build):
    warehouse, _ = handmade_build
    users = [
        row["user_id"] for row in warehouse.query("select user_id from marts.dim_users order by 1")
    ]
    # anon-x never identified and u16 acts only after as_of
    assert users == sorted(EXPECTED_USERS)


def test_onboarding_conversion_inactivity_stage_and_segment_per_user(handmade_build):
    warehouse, _ = handmade_build
    rows = warehouse.query(
        """
        select d.user_id, d.steps_completed, d.is_converted, d.is_inactive, d.lifecycle_stage,
               d.nurture_segment, s.qualified_at
        from marts.dim_users d left join marts.user_segments s using (user_id)
        """
    )
    actual = {row.pop("user_id"): tuple(row.values()) for row in rows}
    assert actual == EXPECTED_USERS


def test_signup_and_activity_windows_per_user(handmade_build):
    warehouse, _ = handmade_build
    rows = warehouse.query(
        "select user_id, signed_up_at, last_active_at, events_last_7d, events_prev_7d"
        " from marts.dim_users"
    )
    assert {row.pop("user_id"): tuple(row.values()) for row in rows} == EXPECTED_ACTIVITY


def test_step_columns_and_completion_flags(handmade_build):
    warehouse, _ = handmade_build
    (u13,) = warehouse.query("select * from marts.dim_users where user_id = 'u13'")
    assert [u13[f"step_{k}_at"] for k in range(1, 5)] == [ago(14, -1), ago(14, -2), ago(14, -3), T]
    assert u13["last_step_at"] == T
    assert u13["is_onboarding_started"] and u13["is_onboarding_completed"]
    (u07,) = warehouse.query("select * from marts.dim_users where user_id = 'u07'")
    assert u07["step_1_at"] == ago(2, seconds=-1) and u07["step_2_at"] is None
    assert u07["is_onboarding_started"] and not u07["is_onboarding_completed"]


def test_latest_traits_and_timezone_fallback(handmade_build):
    warehouse, _ = handmade_build
    rows = warehouse.query(
        "select user_id, email, name, timezone, has_valid_timezone, is_admin from marts.dim_users"
    )
    actual = {row.pop("user_id"): tuple(row.values()) for row in rows}
    assert {user: actual[user] for user in EXPECTED_TRAITS} == EXPECTED_TRAITS


def test_priority_picks_the_first_of_several_segments(handmade_build):
    warehouse, _ = handmade_build
    rows = warehouse.query(
        "select user_id, segment from intermediate.int_user_segment_candidates"
        " where user_id in ('u02', 'u04') order by user_id, segment_priority"
    )
    assert [(row["user_id"], row["segment"]) for row in rows] == [
        ("u02", "lapsed"),
        ("u02", "never_started"),
        ("u04", "dormant"),
        ("u04", "declining"),
    ]


def test_headline_kpis_are_exact_fractions(handmade_build):
    warehouse, _ = handmade_build
    (last,) = warehouse.query("select * from marts.kpi_daily order by date desc limit 1")
    assert last["date"] == date(2026, 11, 24)
    assert last["measured_at"] == T
    # mature: u01 u02 u03 u04 u05 u10 u11 u12 u13 u14; converted: u01 u03 u04 u05 u10 u11 u13
    assert (last["converted_users"], last["mature_signups"]) == (7, 10)
    assert last["onboarding_conversion_rate"] == pytest.approx(float(Fraction(7, 10)), abs=1e-12)
    # started within the window: the converted ones + u14 (u12 started after it)
    assert last["started_in_window_users"] == 8
    assert last["onboarding_completion_rate"] == pytest.approx(float(Fraction(7, 8)), abs=1e-12)
    # inactive: u02 u03 u04 of 14 signed-up users
    assert (last["inactive_users"], last["signed_up_users"], last["active_users"]) == (3, 14, 11)
    assert last["inactivity_rate"] == pytest.approx(float(Fraction(3, 14)), abs=1e-12)


def test_kpi_history_is_measured_at_the_end_of_each_day(handmade_build):
    warehouse, _ = handmade_build
    days = warehouse.query("select * from marts.kpi_daily order by date")
    # first event: u10/u11 signed up 2026-09-25; one row per day through Nov 24
    assert len(days) == 61
    assert days[0]["date"] == date(2026, 9, 25)
    (nov14,) = [row for row in days if row["date"] == date(2026, 11, 14)]
    # measured at Nov 15 00:00 = T - 9.5d: mature = signed up by T - 23.5d: u02 u03 u04 u10 u11
    # u12; converted u03 u04 u10 u11; signed up by then: all but u07 u08 u09; active in
    # (T - 16.5d, T - 9.5d]: u04 u05 u06 u10 u11 u13
    assert nov14["measured_at"] == datetime(2026, 11, 15, tzinfo=UTC)
    assert nov14["signups"] == 1  # u06
    assert (
        nov14["mature_signups"],
        nov14["converted_users"],
        nov14["started_in_window_users"],
    ) == (6, 4, 4)
    assert nov14["onboarding_conversion_rate"] == pytest.approx(4 / 6, abs=1e-12)
    assert nov14["onboarding_completion_rate"] == pytest.approx(1.0, abs=1e-12)
    assert (nov14["signed_up_users"], nov14["active_users"], nov14["inactive_users"]) == (11, 6, 5)
    assert nov14["inactivity_rate"] == pytest.approx(5 / 11, abs=1e-12)
    assert sum(row["signups"] for row in days) == 14


def test_onboarding_funnel_over_the_mature_cohort(handmade_build):
    warehouse, _ = handmade_build
    rows = warehouse.query("select * from marts.fct_onboarding_funnel order by step_number")
    actual = [
        (
            r["step_number"],
            r["step_name"],
            r["users_reached"],
            r["pct_of_signups"],
            r["pct_of_previous_step"],
        )
        for r in rows
    ]
    assert actual == [
        (0, "Signed Up", 10, 1.0, None),
        (1, "Profile Completed", 8, 0.8, 0.8),  # not u02 (none), not u12 (after the window)
        (2, "First Project Created", 8, 0.8, 1.0),
        (3, "Teammate Invited", 8, 0.8, 1.0),
        (4, "First Report Shared", 7, 0.7, 0.875),  # not u14 (1 s late) = the conversion rate
    ]
    # hours to step 1: 1 1 1 1 1 24 24 24 -> 1; to all four: 4 4 72 96 96 96 336 -> 96
    assert rows[0]["median_hours_from_signup"] == 0
    assert rows[1]["median_hours_from_signup"] == pytest.approx(1.0)
    assert rows[4]["median_hours_from_signup"] == pytest.approx(96.0)


def test_user_progress(handmade_build):
    warehouse, _ = handmade_build
    rows = warehouse.query(
        "select user_id, steps_completed, next_step_name, percent_complete, active_days_last_7,"
        " current_streak_days, progress_percentile from marts.user_progress"
    )
    actual = {row.pop("user_id"): tuple(row.values()) for row in rows}
    assert len(actual) == len(EXPECTED_USERS)
    assert {user: actual[user] for user in EXPECTED_PROGRESS} == EXPECTED_PROGRESS


def test_schemas_are_exactly_staging_intermediate_marts(handmade_build):
    warehouse, _ = handmade_build
    rows = warehouse.query(
        "select table_schema, table_name, table_type from information_schema.tables"
        " where table_schema in ('staging', 'intermediate', 'marts') order by 1, 2"
    )
    by_schema = {}
    for row in rows:
        by_schema.setdefault(row["table_schema"], set()).add((row["table_name"], row["table_type"]))
    assert by_schema["staging"] == {
        ("stg_segment__events", "VIEW"),
        ("stg_segment__identifies", "VIEW"),
        ("stg_messaging__sends", "VIEW"),
        ("stg_sendgrid__email_events", "VIEW"),
    }
    assert {name for name, _ in by_schema["marts"]} == {
        "dim_users", "user_segments", "kpi_daily", "fct_onboarding_funnel", "user_progress",
        "fct_message_performance", "fct_sequence_experiments",
    }  # fmt: skip
    assert all(kind == "BASE TABLE" for _, kind in by_schema["marts"])
    assert ("int_identity_daily_activity", "BASE TABLE") in by_schema["intermediate"]
    schemas = {
        r["schema_name"]
        for r in warehouse.query("select schema_name from information_schema.schemata")
    }
    assert not any(schema.startswith(("main_", "dev_")) for schema in schemas)
