"""Email events: webhook files → raw.email_events; suppressions and confirmed sends."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.lib.email_events import (
    ApplyReport,
    EmailEventsReport,
    apply_email_events,
    load_email_events,
)
from pipelines.lib.steps.context import Opener, RunContext


@dataclass(frozen=True)
class EmailEventsResult:
    loaded: EmailEventsReport
    applied: ApplyReport

    @property
    def failed(self) -> bool:
        # What a file contains never fails this step (docs/architecture.md §12): bad events
        # are rejected one by one; only a fault of the warehouse itself raises.
        return False

    def lines(self) -> list[str]:
        loaded, applied = self.loaded, self.applied
        lines = [
            f"email events: {loaded.loaded} loaded, {loaded.duplicate} duplicate,"
            f" {loaded.rejected} rejected; suppressions added {applied.suppressions_added},"
            f" unknown sends confirmed {applied.confirmed_unknown}"
        ]
        lines += [f"email events: skipped {path}: {why}" for path, why in loaded.skipped]
        return lines


def email_events_step(run: RunContext, connect: Opener) -> EmailEventsResult:
    with connect() as con:
        loaded = load_email_events(con, run.settings.landing_email_events_dir)
        applied = apply_email_events(con)
    return EmailEventsResult(loaded, applied)
