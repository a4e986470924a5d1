"""landing_sensor: a new or changed landing file starts an ingestion run."""

import dagster as dg

from pipelines.defs.ingest.jobs import ingest_events_job
from pipelines.lib.ingest.watch import find_changed_files
from pipelines.lib.settings import load_settings


@dg.sensor(
    job=ingest_events_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Watches $BIS_DATA_DIR/landing/events; run_key = path:sha256.",
)
def landing_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    folder = load_settings().landing_events_dir
    result = find_changed_files(folder, context.cursor)
    if not result.changed:
        return dg.SensorResult(skip_reason=result.skip_reason(folder), cursor=result.cursor)
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=changed.run_key,
                run_config={"ops": {"raw_events": {"config": {"paths": [changed.path]}}}},
                tags={"bis/landing_file": changed.path, "bis/sha256": changed.sha256},
            )
            for changed in result.changed
        ],
        cursor=result.cursor,
    )
