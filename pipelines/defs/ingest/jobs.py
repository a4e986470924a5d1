"""Jobs launched by the ingest sensor."""

import dagster as dg

ingest_events_job = dg.define_asset_job(
    name="ingest_events",
    # Ingest, then rebuild everything downstream so the marts reflect the new events.
    selection=dg.AssetSelection.assets("raw_events").downstream(),
    description="Load new landing files into the raw tables, then rebuild the dbt marts.",
)
