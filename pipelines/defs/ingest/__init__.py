"""Ingestion: landing files → raw tables."""

import dagster as dg

from pipelines.defs.ingest.assets import raw_events
from pipelines.defs.ingest.checks import ingested_files_counts_add_up, raw_events_unique_event_id
from pipelines.defs.ingest.jobs import ingest_events_job
from pipelines.defs.ingest.sensors import landing_sensor

defs = dg.Definitions(
    assets=[raw_events],
    asset_checks=[ingested_files_counts_add_up, raw_events_unique_event_id],
    jobs=[ingest_events_job],
    sensors=[landing_sensor],
)
