"""Ingestion invariants: counts add up per file, and no event is stored twice."""

import dagster as dg

from pipelines.defs.ingest.assets import raw_events
from pipelines.defs.resources import WAREHOUSE_POOL, WarehouseResource
from pipelines.lib.ingest.checks import event_id_duplicates, unbalanced_files


@dg.asset_check(
    asset=raw_events,
    pool=WAREHOUSE_POOL,
    blocking=True,
    description="rows_read = loaded + rejected + duplicate for every file",
)
def ingested_files_counts_add_up(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect() as con:
        bad = unbalanced_files(con)
    return dg.AssetCheckResult(
        passed=not bad,
        metadata={"unbalanced_files": len(bad), "examples": dg.MetadataValue.json(bad[:10])},
    )


@dg.asset_check(
    asset=raw_events,
    pool=WAREHOUSE_POOL,
    blocking=True,
    description="every event_id appears once in raw.events",
)
def raw_events_unique_event_id(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect() as con:
        duplicates = event_id_duplicates(con)
    return dg.AssetCheckResult(passed=duplicates == 0, metadata={"duplicate_ids": duplicates})
