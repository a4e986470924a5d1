"""Guardrail settings (docs/architecture.md §8), with the contract's defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

OPEN_STATUSES = ("planned", "sending")  # claimed for sending, not yet resolved
WAITING_STATUSES = ("deferred", "capped")  # re-decided by every plan
TERMINAL_STATUSES = ("sent", "failed", "held_out", "suppressed", "unknown", "cancelled")
# What counts against the frequency cap: anything that went, or may have gone, out, and a
# held-out message too: holdout users must live through the same cadence as treatment users
# (else the next sequence fills their free slot and the experiment compares unlike groups).
CAP_COUNTED_STATUSES = ("planned", "sending", "sent", "unknown", "held_out")


@dataclass(frozen=True)
class Guardrails:
    cap_per_day: int = 1
    cap_per_week: int = 3
    quiet_start_hour: int = 21  # local time, inclusive
    quiet_end_hour: int = 8  # local time, exclusive
    max_sends_per_run: int = 50_000

    def __post_init__(self) -> None:
        for name in ("quiet_start_hour", "quiet_end_hour"):
            if not 0 <= getattr(self, name) <= 23:
                raise ValueError(f"{name} must be an hour 0-23, got {getattr(self, name)}")
        if self.cap_per_day < 0 or self.cap_per_week < 0 or self.max_sends_per_run < 0:
            raise ValueError("caps and max_sends_per_run must not be negative")


GUARDRAIL_FIELDS = tuple(f.name for f in fields(Guardrails))
# What each guardrail means, for `bis run --help` and the Launchpad's run config.
GUARDRAIL_HELP = {
    "cap_per_day": "messages per user in 24 hours, across sequences",
    "cap_per_week": "messages per user in 7 days, across sequences",
    "quiet_start_hour": "start of quiet hours, user's local hour 0-23 (inclusive)",
    "quiet_end_hour": "end of quiet hours, user's local hour 0-23 (exclusive)",
    "max_sends_per_run": "more planned than this fails the send before anything goes out",
}


def guardrails_with(overrides: Mapping[str, int | None]) -> Guardrails:
    """The contract's guardrails with the given values replaced (None keeps the default);
    an impossible value (a negative cap, hour 24) is a ValueError naming it."""
    unknown = set(overrides) - set(GUARDRAIL_FIELDS)
    if unknown:
        raise ValueError(f"unknown guardrails: {', '.join(sorted(unknown))}")
    return Guardrails(**{name: value for name, value in overrides.items() if value is not None})
