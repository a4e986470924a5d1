"""What a user sees about themself: the user_progress row plus the next call to action."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

from pipelines.lib.atomic_files import atomic_output
from pipelines.lib.settings import Settings, load_settings

# The app page for each onboarding micro-commitment (the next step's call to action).
NEXT_STEP_ACTIONS = {
    "Profile Completed": ("Complete your profile", "/settings/profile"),
    "First Project Created": ("Create your first project", "/projects/new"),
    "Teammate Invited": ("Invite a teammate", "/team/invite"),
    "First Report Shared": ("Share your first report", "/reports"),
}
PROGRESS_SQL = """
select user_id, steps_completed, next_step_name, percent_complete, active_days_last_7,
       current_streak_days, progress_percentile
from marts.user_progress
"""


class UnknownUserError(LookupError):
    pass


def _with_action(row: dict, app_url: str) -> dict:
    action = NEXT_STEP_ACTIONS.get(row["next_step_name"] or "")
    row["next_action"] = (
        {"label": action[0], "url": app_url.rstrip("/") + action[1]} if action else None
    )
    return row


DEMO_APP_URL = "https://app.example.com"


def app_url(settings: Settings | None = None) -> str:
    """`BIS_APP_URL` from `settings` (default: the current settings), else the demo app."""
    return (settings or load_settings()).app_url or DEMO_APP_URL


def user_metrics(
    con: duckdb.DuckDBPyConnection, user_id: str, settings: Settings | None = None
) -> dict:
    """The progress metrics for one user; UnknownUserError when the marts do not have them."""
    cursor = con.execute(PROGRESS_SQL + " where user_id = ?", [user_id])
    row = cursor.fetchone()
    if row is None:
        raise UnknownUserError(f"no progress metrics for user {user_id!r} in marts.user_progress")
    names = [d[0] for d in cursor.description]
    return _with_action(dict(zip(names, row, strict=True)), app_url(settings))


def format_metrics(metrics: dict) -> list[str]:
    lines = [
        f"user {metrics['user_id']}: {metrics['steps_completed']}/4 onboarding steps"
        f" ({metrics['percent_complete']:.0f}% complete,"
        f" ahead of {metrics['progress_percentile']:.0f}% of your signup week)",
        f"active {metrics['active_days_last_7']} of the last 7 days;"
        f" current streak {metrics['current_streak_days']} day(s)",
    ]
    action = metrics["next_action"]
    lines.append(
        f"next: {action['label']}: {action['url']}" if action else "next: onboarding complete"
    )
    return lines


def export_user_progress(
    con: duckdb.DuckDBPyConnection, out_path: Path, settings: Settings | None = None
) -> int:
    """Every user's metrics as JSON Lines, written atomically; returns the row count."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    cursor = con.execute(PROGRESS_SQL + " order by user_id")
    names = [d[0] for d in cursor.description]
    url = app_url(settings)
    count = 0
    with atomic_output(out_path, "w") as handle:
        while batch := cursor.fetchmany(10_000):
            for row in batch:
                handle.write(
                    json.dumps(_with_action(dict(zip(names, row, strict=True)), url)) + "\n"
                )
                count += 1
    return count
