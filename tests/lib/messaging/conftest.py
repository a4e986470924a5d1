"""A warehouse with hand-written marts (the three the planner reads) and small sequences."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from pipelines.lib.flags import load_flags
from pipelines.lib.sequences import load_sequences
from pipelines.lib.settings import FLAGS_FILE
from tests.conftest import ENGINES

T = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)  # 15:00 UTC: daytime in Europe and the Americas

MARTS_DDL = """
create schema if not exists marts;
create or replace table marts.dim_users (
    user_id varchar, email varchar, name varchar, timezone varchar, has_valid_timezone boolean,
    is_admin boolean, signed_up_at timestamptz, step_1_at timestamptz, step_2_at timestamptz,
    step_3_at timestamptz, step_4_at timestamptz, steps_completed integer,
    last_step_at timestamptz, is_onboarding_started boolean, is_onboarding_completed boolean,
    is_converted boolean, last_active_at timestamptz, events_last_7d integer,
    events_prev_7d integer, is_inactive boolean, lifecycle_stage varchar,
    nurture_segment varchar
);
create or replace table marts.user_segments (
    user_id varchar, segment varchar, qualified_at timestamptz
);
create or replace table marts.user_progress (
    user_id varchar, steps_completed integer, next_step_name varchar,
    percent_complete double, active_days_last_7 integer, current_streak_days integer,
    progress_percentile double
);
"""


def add_user(
    con: duckdb.DuckDBPyConnection,
    user_id: str,
    *,
    steps: int = 0,
    segment: str | None = None,
    qualified_at: datetime | None = None,
    signed_up_at: datetime | None = None,
    timezone: str = "Europe/Paris",
    valid_timezone: bool = True,
    is_admin: bool = False,
    email: str | None = None,
) -> None:
    signed_up_at = signed_up_at or T - timedelta(days=3)
    email = email if email is not None else f"{user_id}@example.com"
    con.execute(
        "insert into marts.dim_users (user_id, email, name, timezone, has_valid_timezone,"
        " is_admin, signed_up_at, steps_completed, is_onboarding_started,"
        " is_onboarding_completed, last_active_at, events_last_7d, events_prev_7d,"
        " lifecycle_stage, nurture_segment) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0,"
        " 'new', ?)",
        [
            user_id,
            email,
            f"Ann {user_id}",
            timezone if valid_timezone else "UTC",
            valid_timezone,
            is_admin,
            signed_up_at,
            steps,
            steps > 0,
            steps == 4,
            signed_up_at,
            segment,
        ],
    )
    con.execute(
        "insert into marts.user_progress values (?, ?, 'Profile Completed', ?, 1, 1, 50)",
        [user_id, steps, steps * 25.0],
    )
    if segment:
        con.execute(
            "insert into marts.user_segments values (?, ?, ?)",
            [user_id, segment, qualified_at or T - timedelta(days=1)],
        )


SEQUENCE_A = """
id: nudge_a
description: Test sequence A.
audience: {segment: stalled}
flag: nurture_stalled
priority: 20
holdout_percent: 0
goal: {condition: "steps_completed = 4", within_days: 14}
exit_when: "steps_completed = 4"
steps:
  - id: first
    after: 0h
    template: test/first
  - id: second
    after: 48h
    template: test/second
"""
SEQUENCE_B = """
id: nudge_b
description: Test sequence B, lower priority.
audience: {segment: stalled}
flag: nurture_dormant
priority: 30
holdout_percent: 0
goal: {condition: "steps_completed = 4", within_days: 14}
steps:
  - id: only
    after: 0h
    template: test/first
"""


@pytest.fixture
def sequences_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "sequences"
    templates = folder / "templates" / "test"
    templates.mkdir(parents=True)
    (folder / "a.yaml").write_text(textwrap.dedent(SEQUENCE_A))
    (folder / "b.yaml").write_text(textwrap.dedent(SEQUENCE_B))
    for name in ("first", "second"):
        (templates / f"{name}.subject.j2").write_text("Hi {{ user.first_name or 'there' }}\n")
        (templates / f"{name}.html.j2").write_text("<p>Step {{ user.steps_completed }}</p>\n")
        (templates / f"{name}.txt.j2").write_text("Step {{ user.steps_completed }}\n")
    return folder


@pytest.fixture
def ledger(warehouse: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    warehouse.execute(MARTS_DDL)
    return warehouse


@pytest.fixture
def flags():
    return load_flags(FLAGS_FILE)


@pytest.fixture
def test_sequences(sequences_dir: Path):
    return load_sequences(sequences_dir)


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """The planner, the ledger and the send loop run on both engines (docs/architecture.md §16)."""
    return request.param
