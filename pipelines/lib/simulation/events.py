"""The Segment events and SendGrid webhook events that simulated users produce.

Simulated users are plainly marked: ids start with `sim-`, addresses are
`simulated+…@example.com`, and every event carries `"simulated": true` in its properties or
traits, so nobody can mistake them for real people in the warehouse.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from pipelines.lib.sample_data.records import Record, dumps, jsonl_line, uuid4_from

# Timezones where the daily run hour (12:00 UTC) is daytime, so quiet hours never hold a
# welcome email back and every treatment user actually receives one.
SIMULATED_TIMEZONES = (
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "Africa/Lagos",
    "Asia/Kolkata",
    "America/Sao_Paulo",
)
SIGNUP_EVENT = "Signed Up"
ONBOARDING_STEPS = (
    "Profile Completed",
    "First Project Created",
    "Teammate Invited",
    "First Report Shared",
)
_CONTEXT = dumps({"library": {"name": "bis-simulate", "version": "1"}})


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class SimulatedEvent:
    """One Segment event, kept with its time so it lands in the right day's file."""

    at: datetime
    line: str  # the JSON Lines record, newline-terminated


def _event(
    rng: random.Random,
    at: datetime,
    typ: str,
    user_id: str,
    *,
    event: str | None = None,
    properties: dict | None = None,
    traits: dict | None = None,
) -> SimulatedEvent:
    record: Record = (
        uuid4_from(rng),
        typ,
        event,
        None,
        user_id,
        None,
        _iso(at),
        _iso(at + timedelta(seconds=1)),
        dumps(properties) if properties is not None else None,
        dumps(traits) if traits is not None else None,
        _CONTEXT,
    )
    return SimulatedEvent(at, jsonl_line(record))


def simulated_user_id(seed: int, day: int, number: int) -> str:
    return f"sim-{seed}-d{day:03d}-{number:05d}"


def simulated_email(user_id: str) -> str:
    return f"simulated+{user_id}@example.com"


def signup_events(rng: random.Random, user_id: str, signed_up_at: datetime) -> list[SimulatedEvent]:
    """An identify with the traits the planner needs, then the signup itself."""
    traits = {
        "email": simulated_email(user_id),
        "name": f"Simulated {user_id}",
        "timezone": rng.choice(SIMULATED_TIMEZONES),
        "plan": "free",
        "created_at": _iso(signed_up_at),
        "simulated": True,
    }
    return [
        _event(rng, signed_up_at - timedelta(seconds=30), "identify", user_id, traits=traits),
        _event(
            rng,
            signed_up_at,
            "track",
            user_id,
            event=SIGNUP_EVENT,
            properties={"plan": "free", "simulated": True},
        ),
    ]


def onboarding_step_events(
    rng: random.Random, user_id: str, start: datetime, steps: int
) -> list[SimulatedEvent]:
    """The first `steps` onboarding steps, a few hours apart, starting after `start`."""
    events, at = [], start
    for step in ONBOARDING_STEPS[:steps]:
        at += timedelta(minutes=rng.randint(60, 18 * 60))
        events.append(_event(rng, at, "track", user_id, event=step, properties={"simulated": True}))
    return events


def webhook_events(
    rng: random.Random,
    *,
    send_id: str,
    email: str,
    sent_at: datetime,
    opened: bool,
    clicked: bool,
) -> list[tuple[datetime, dict]]:
    """SendGrid Event Webhook events for one received email (custom args flattened, as
    SendGrid posts them)."""
    base = {"email": email, "send_id": send_id, "sg_message_id": f"sim.{send_id}"}
    moments = [("delivered", sent_at + timedelta(seconds=rng.randint(2, 90)))]
    if opened or clicked:
        moments.append(("open", sent_at + timedelta(minutes=rng.randint(5, 600))))
    if clicked:
        moments.append(("click", moments[-1][1] + timedelta(minutes=rng.randint(1, 30))))
    return [
        (
            at,
            {
                **base,
                "event": name,
                "timestamp": int(at.timestamp()),
                "sg_event_id": f"sim-{name}-{send_id}",
            },
        )
        for name, at in moments
    ]
