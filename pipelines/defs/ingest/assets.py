"""raw_events: landing files → raw.events, raw.events_rejected, raw.ingested_files."""

import dagster as dg
from pydantic import Field

from pipelines.defs.resources import WAREHOUSE_POOL, WarehouseResource
from pipelines.defs.run_context import dagster_run_context
from pipelines.lib.ingest.report import files_markdown, rejections_markdown
from pipelines.lib.steps import ingest_step


class RawEventsConfig(dg.Config):
    paths: list[str] = Field(
        default_factory=list,
        description="Only these landing files (the sensor passes one); empty: every new file.",
    )


@dg.asset(
    group_name="ingest",
    pool=WAREHOUSE_POOL,
    kinds={"duckdb", "python"},
    description="Segment-spec events from $BIS_DATA_DIR/landing/events, validated and "
    "deduplicated by event_id; rejects are kept in raw.events_rejected with their reason.",
)
def raw_events(
    context: dg.AssetExecutionContext, config: RawEventsConfig, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    result = ingest_step(
        dagster_run_context(context), warehouse.connect, only_paths=config.paths or None
    )
    summary = result.summary
    context.log.info(result.summary_line())
    if result.failed:
        # The other files are committed; these stay pending and are retried next run.
        raise dg.Failure(
            description="Some landing files could not be ingested:\n" + "\n".join(summary.errors)
        )
    return dg.MaterializeResult(
        metadata={
            "files_ingested": len(summary.ingested),
            "files_skipped": len(summary.files) - len(summary.ingested),
            "rows_loaded": summary.total("rows_loaded"),
            "rows_rejected": summary.total("rows_rejected"),
            "rows_duplicate": summary.total("rows_duplicate"),
            "dagster/row_count": result.total_events,
            "rejection_reasons": dg.MetadataValue.md(rejections_markdown(summary)),
            "files": dg.MetadataValue.md(files_markdown(summary)),
        }
    )
