"""The pipeline's one clock: `BIS_AS_OF` when set, else the current time in UTC.

Every time rule reads this, so a run with a fixed `BIS_AS_OF` is reproducible.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipelines.lib.settings import Settings


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO 8601 timestamp; a value without an offset is taken as UTC."""
    cleaned = text.strip()
    if cleaned.endswith("Z"):
        cleaned = cleaned[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError as exc:
        raise ValueError(
            f"not an ISO 8601 timestamp: {text!r} (expected e.g. 2026-11-24T12:00:00Z)"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def as_of(override: str | datetime | None = None, settings: Settings | None = None) -> datetime:
    """The pipeline clock: an explicit override, else `BIS_AS_OF` (from `settings`, or read
    now when none are given), else now (UTC)."""
    if isinstance(override, datetime):
        return override.astimezone(UTC) if override.tzinfo else override.replace(tzinfo=UTC)
    if override:
        return parse_timestamp(override)
    if settings is not None:
        configured = settings.as_of
    else:
        # Imported here: the settings module parses BIS_AS_OF with parse_timestamp above.
        from pipelines.lib.settings import env_as_of

        configured = env_as_of()
    return configured if configured is not None else datetime.now(UTC)


def wall_clock() -> datetime:
    """The machine's clock. Only for guarding the pipeline clock and for real-time ages
    (a stuck `sending` row, a webhook signature's freshness): no rule reads it."""
    return datetime.now(UTC)
