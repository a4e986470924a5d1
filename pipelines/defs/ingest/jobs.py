"""Jobs launched by the ingest sensor."""

import dagster as dg

ingest_events_job = dg.define_asset_job(
    name="ingest_events",
    selection=dg.AssetSelection.assets("raw_events"),
    description="Load new landing files into the raw tables.",
)
