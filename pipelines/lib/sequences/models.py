"""Pydantic models of a sequence file (docs/architecture.md §6).

The planner reads these, never raw YAML.

Strict and closed (`extra="forbid"`): YAML turns `off` into False and `10` into an int, and a
misspelt optional key (`exit_whn:`) would otherwise be dropped in silence, so every surprise
is a validation error that `bis sequences check` maps back to its line.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SEGMENTS = ("lapsed", "dormant", "stalled", "never_started", "declining")

# Ids end up in send_id hashes, ledger rows, SendGrid categories and file names: keep them plain.
ID_PATTERN = r"^[a-z][a-z0-9_]*$"
# `<folder>/<name>` under sequences/templates; no `..` or absolute paths by construction.
TEMPLATE_PATTERN = r"^[a-z0-9_\-]+(/[a-z0-9_\-]+)*$"
_DURATION = re.compile(r"^\s*(\d+)\s*([mhd])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_duration(value: str) -> timedelta:
    """`30m`, `72h`, `7d` -> timedelta; anything else raises ValueError."""
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"must be a duration like 0h, 30m, 72h or 7d (got {value!r})")
    amount, unit = match.groups()
    return timedelta(**{_UNITS[unit]: int(amount)})


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Step(_Strict):
    """One message: sent `after` the enrollment's qualified_at, if `when` holds then."""

    id: str = Field(pattern=ID_PATTERN)
    after: timedelta
    when: str | None = None
    template: str = Field(pattern=TEMPLATE_PATTERN)

    @field_validator("after", mode="before")
    @classmethod
    def _parse_after(cls, value: Any) -> Any:
        if isinstance(value, timedelta):
            return value
        if isinstance(value, str):
            return parse_duration(value)
        # A bare `after: 72` is ambiguous (hours? minutes?), so it is refused, not guessed.
        raise ValueError(f"must be a duration like 0h, 30m, 72h or 7d (got {value!r})")


class Audience(_Strict):
    """Who enrolls: a nurture segment (from marts.user_segments) or a condition, exactly one."""

    segment: str | None = None
    condition: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Audience:
        if (self.segment is None) == (self.condition is None):
            raise ValueError("set exactly one of 'segment' or 'condition'")
        return self


class Goal(_Strict):
    """Conversion: the condition becomes true within `within_days` of enrollment."""

    condition: str
    within_days: int = Field(ge=1, le=365)


class Sequence(_Strict):
    """A sequence file. `source_file` is set by the loader (the path shown in messages)."""

    id: str = Field(pattern=ID_PATTERN)
    description: str = Field(min_length=1)
    audience: Audience
    flag: str = Field(min_length=1)
    priority: int
    # At most half: a holdout larger than the treatment group measures little and sends less.
    holdout_percent: float = Field(ge=0, le=50)
    goal: Goal
    exit_when: str | None = None
    steps: list[Step] = Field(min_length=1)
    source_file: str


# Which model a YAML path points into, to suggest the nearest field name for an unknown key.
def fields_at(path: tuple[str | int, ...]) -> list[str]:
    """Field names allowed in the mapping at `path` of a sequence file ([] when not a model)."""
    if path == ():
        return [name for name in Sequence.model_fields if name != "source_file"]
    if path == ("audience",):
        return list(Audience.model_fields)
    if path == ("goal",):
        return list(Goal.model_fields)
    if len(path) == 2 and path[0] == "steps" and isinstance(path[1], int):
        return list(Step.model_fields)
    return []
