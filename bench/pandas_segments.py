"""The baseline a user would write: the nurture segments in plain pandas, from the landing files.

Same definitions as marts.user_segments (docs/architecture.md §5): events deduplicated by
messageId, blank ids treated as missing, anonymous events stitched to the first user their
device was linked to, everything evaluated at T = as_of. No warehouse, no SQL: read Parquet,
group, compare.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

SIGNUP_EVENT = "Signed Up"
ONBOARDING_STEPS = ("Profile Completed", "First Project Created", "Teammate Invited",
                    "First Report Shared")  # fmt: skip
COLUMNS = ["messageId", "type", "event", "userId", "anonymousId", "timestamp"]


def _blank_to_na(column: pd.Series) -> pd.Series:
    stripped = column.str.strip()
    return stripped.where(stripped != "")


def load_events(paths: Sequence[Path]) -> pd.DataFrame:
    """The columns the segments need, one row per distinct messageId."""
    frame = pd.concat([pd.read_parquet(p, columns=COLUMNS) for p in paths], ignore_index=True)
    # Segment delivers at least once: a re-sent record has the same messageId.
    frame = frame.drop_duplicates("messageId")
    return pd.DataFrame(
        {
            "event_id": frame["messageId"],
            "is_tracked": (frame["type"] == "track").to_numpy(),
            "event": _blank_to_na(frame["event"]),
            "user_id": _blank_to_na(frame["userId"]),
            "anonymous_id": _blank_to_na(frame["anonymousId"]),
            "occurred_at": pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601"),
        }
    )


def user_segments(events: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """One row per user in a nurture segment: user_id, segment, qualified_at."""
    t = pd.Timestamp(as_of)
    events = events[events["occurred_at"] <= t]
    events = events[events["user_id"].notna() | events["anonymous_id"].notna()]

    # anonymous_id -> the first user it was seen with (by time, then event id).
    links = events[events["user_id"].notna() & events["anonymous_id"].notna()]
    links = links.sort_values(["occurred_at", "event_id"]).drop_duplicates("anonymous_id")
    identity_map = pd.Series(links["user_id"].to_numpy(), index=links["anonymous_id"].to_numpy())

    identified = events["user_id"].notna()
    user = events["user_id"].fillna(events["anonymous_id"].map(identity_map))
    events = events.assign(user=user, is_identified=identified)[user.notna()]

    tracked = events["is_tracked"]
    at = events["occurred_at"]
    week_ago, two_weeks_ago = t - pd.Timedelta(days=7), t - pd.Timedelta(days=14)
    columns = {
        "first_event_at": at.where(events["is_identified"]),
        "signup_event_at": at.where(tracked & (events["event"] == SIGNUP_EVENT)),
        "last_active_at": at.where(tracked),
        "events_last_7d": (tracked & (at > week_ago)).astype("int64"),
        "events_prev_7d": (tracked & (at > two_weeks_ago) & (at <= week_ago)).astype("int64"),
    }
    for k, step in enumerate(ONBOARDING_STEPS, start=1):
        columns[f"step_{k}_at"] = at.where(tracked & (events["event"] == step))
    per_event = pd.DataFrame(columns)
    per_event["user"] = events["user"]
    users = per_event.groupby("user", sort=False).agg(
        first_event_at=("first_event_at", "min"),
        signup_event_at=("signup_event_at", "min"),
        last_active_at=("last_active_at", "max"),
        events_last_7d=("events_last_7d", "sum"),
        events_prev_7d=("events_prev_7d", "sum"),
        **{f"step_{k}_at": (f"step_{k}_at", "min") for k in range(1, 5)},
    )
    return _segments(users, t)


def _segments(users: pd.DataFrame, t: pd.Timestamp) -> pd.DataFrame:
    steps = users[[f"step_{k}_at" for k in range(1, 5)]]
    steps_completed = steps.notna().sum(axis=1)
    last_step_at = steps.max(axis=1)
    signed_up_at = users["signup_event_at"].fillna(users["first_event_at"])
    last_active = users["last_active_at"]
    prev, last = users["events_prev_7d"], users["events_last_7d"]
    hours = pd.Timedelta(hours=1)
    # Priority order: lapsed, dormant, stalled, never_started, declining (first match wins).
    rules = [
        ("lapsed", last_active <= t - 720 * hours, last_active + 720 * hours),
        (
            "dormant",
            (steps_completed == 4) & (last_active <= t - 168 * hours),
            last_active + 168 * hours,
        ),
        (
            "stalled",
            steps_completed.between(1, 3) & (last_step_at <= t - 48 * hours),
            last_step_at + 48 * hours,
        ),
        (
            "never_started",
            (steps_completed == 0) & (signed_up_at <= t - 24 * hours),
            signed_up_at + 24 * hours,
        ),
        (
            "declining",
            (prev >= 5) & (last < 0.5 * prev),
            pd.Series(t.normalize() - pd.Timedelta(days=t.weekday()), index=users.index),
        ),
    ]
    conditions = [rule.fillna(False).to_numpy(dtype=bool) for _, rule, _ in rules]
    segment = np.select(conditions, [name for name, _, _ in rules], default="")
    qualified = pd.Series(pd.NaT, index=users.index, dtype=last_active.dtype)
    for condition, (_, _, when) in zip(reversed(conditions), reversed(rules), strict=True):
        qualified = qualified.mask(condition, when)  # the highest priority is applied last
    chosen = segment != ""
    return pd.DataFrame(
        {
            "user_id": users.index[chosen].astype(str),
            "segment": segment[chosen],
            "qualified_at": qualified[chosen].to_numpy(),
        }
    )
