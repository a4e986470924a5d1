"""Ingestion invariants: counts add up per file, and no event is stored twice (blocking)."""

from pipelines.defs.ingest.assets import raw_events
from pipelines.defs.run_context import invariant_checks
from pipelines.lib.ingest.checks import INGEST_INVARIANTS

ingested_files_counts_add_up, raw_events_unique_event_id = invariant_checks(
    raw_events, INGEST_INVARIANTS
)
