"""Reporting assets: user-facing progress metrics for bots and apps."""

import dagster as dg

from pipelines.defs.resources import WAREHOUSE_POOL, WarehouseResource
from pipelines.lib.settings import load_settings
from pipelines.lib.user_metrics import export_user_progress


@dg.asset(
    group_name="reporting",
    pool=WAREHOUSE_POOL,
    kinds={"duckdb", "json"},
    deps=[dg.AssetKey(["marts", "user_progress"])],
    description="Every user's progress metrics and next call to action, as JSON Lines "
    "at $BIS_DATA_DIR/reports/user_progress.jsonl, for bulk use by a bot or an app.",
)
def user_progress_export(warehouse: WarehouseResource) -> dg.MaterializeResult:
    path = load_settings().reports_dir / "user_progress.jsonl"
    with warehouse.connect() as con:
        rows = export_user_progress(con, path)
    return dg.MaterializeResult(
        metadata={"path": dg.MetadataValue.path(str(path)), "dagster/row_count": rows}
    )
