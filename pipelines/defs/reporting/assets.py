"""Reporting assets: the dashboard, and user-facing progress metrics for bots and apps.

The export reads the published copy (pipelines/lib/published.py), so it needs no warehouse
slot; the dashboard comes after the plan, so it also publishes the ledger the plan wrote."""

import dagster as dg

from pipelines.defs.resources import WAREHOUSE_POOL, WarehouseResource
from pipelines.lib.clock import as_of
from pipelines.lib.kpis import kpi_markdown
from pipelines.lib.published import needs_copy, open_reader, publish, published_path
from pipelines.lib.reporting import build_dashboard
from pipelines.lib.reporting.markdown import experiments_markdown
from pipelines.lib.settings import load_settings
from pipelines.lib.user_metrics import export_user_progress


@dg.asset(
    group_name="reporting",
    kinds={"duckdb", "json"},
    deps=[dg.AssetKey(["marts", "user_progress"])],
    description="Every user's progress metrics and next call to action, as JSON Lines "
    "at $BIS_DATA_DIR/reports/user_progress.jsonl, for bulk use by a bot or an app.",
)
def user_progress_export() -> dg.MaterializeResult:
    settings = load_settings()
    path = settings.reports_dir / "user_progress.jsonl"
    with open_reader(settings) as con:
        rows = export_user_progress(con, path)
    return dg.MaterializeResult(
        metadata={"path": dg.MetadataValue.path(str(path)), "dagster/row_count": rows}
    )


@dg.asset(
    group_name="reporting",
    pool=WAREHOUSE_POOL,
    kinds={"html", "plotly"},
    deps=[
        dg.AssetKey(["marts", "kpi_daily"]),
        dg.AssetKey(["marts", "fct_onboarding_funnel"]),
        dg.AssetKey(["marts", "user_segments"]),
        dg.AssetKey(["marts", "fct_sequence_experiments"]),
        dg.AssetKey(["marts", "fct_message_performance"]),
        dg.AssetKey("message_plan"),
    ],
    description="One self-contained HTML dashboard (opens with no network) at "
    "$BIS_DATA_DIR/reports/dashboard.html: KPIs against baseline and target, trends, "
    "funnel, segments, sequences, experiments, flags, send and data health. Then "
    "publishes the warehouse for readers ($BIS_DATA_DIR/published.duckdb).",
)
def dashboard(warehouse: WarehouseResource) -> dg.MaterializeResult:
    settings = warehouse.settings()  # the resource's warehouse: it decides whether to publish
    path = settings.reports_dir / "dashboard.html"
    clock = as_of(settings=settings)
    with warehouse.connect() as con:
        result = build_dashboard(con, env=settings.env, out_path=path, as_of=clock)
        # On a server warehouse readers query the server itself: there is no copy to write.
        published = (
            publish(con, published_path(settings), as_of=clock) if needs_copy(settings) else None
        )
    metadata = {
        "path": dg.MetadataValue.path(str(result.path)),
        "url": dg.MetadataValue.url(result.path.as_uri()),
        "headline_kpis": dg.MetadataValue.md(kpi_markdown(result.kpis or {})),
        "experiments": dg.MetadataValue.md(experiments_markdown(result.experiments)),
        "charts": result.charts,
    }
    if published is not None:
        metadata["published_seconds"] = dg.MetadataValue.float(round(published.seconds, 3))
    return dg.MaterializeResult(metadata=metadata)
