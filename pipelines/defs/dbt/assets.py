"""dbt models as Dagster assets: raw_events → staging → intermediate → marts."""

import gc
import json
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from pipelines.defs.dbt.resources import dbt_project
from pipelines.defs.resources import WAREHOUSE_POOL
from pipelines.lib import shadow_marts
from pipelines.lib.clock import as_of
from pipelines.lib.dbt import SKIP_UNIT_TESTS, dbt_env, dbt_vars
from pipelines.lib.kpis import LATEST_KPIS_SQL, kpi_markdown, kpis_from_row
from pipelines.lib.published import publish_warehouse
from pipelines.lib.runlock import run_lock
from pipelines.lib.settings import Settings, load_settings, temporary_environ
from pipelines.lib.warehouse import taking_turns

RAW_EVENTS = dg.AssetKey("raw_events")
EMAIL_EVENTS = dg.AssetKey("email_events")  # written by the messaging concern's asset
KPI_DAILY = dg.AssetKey(["marts", "kpi_daily"])


class LayeredTranslator(DagsterDbtTranslator):
    """Groups models by layer; the `raw` sources are the raw_events asset and the `sendgrid`
    source is the email_events asset, so the lineage graph is connected."""

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = manifest["sources"].get(unique_id) or manifest["nodes"][unique_id]
        if node["resource_type"] == "source" and node["source_name"] == "raw":
            return spec.replace_attributes(key=RAW_EVENTS)
        if node["resource_type"] == "source" and node["source_name"] == "sendgrid":
            return spec.replace_attributes(key=EMAIL_EVENTS)
        if node["resource_type"] == "model":
            return spec.replace_attributes(group_name=node["fqn"][1])
        return spec


def release_adapter_connections(adapter: Any) -> None:
    """Close the dbt adapter's in-process warehouse connection (opened for row counts).

    dbt-duckdb keeps one DuckDB handle per process; while it lives, DuckDB refuses the next
    asset's connection in the same process (in-process runs and tests), so drop it here.
    """
    adapter.cleanup_connections()
    manager = type(adapter.connections)
    if hasattr(manager, "close_all_connections"):
        manager.close_all_connections()
    gc.collect()


TRANSLATOR = LayeredTranslator(
    settings=DagsterDbtTranslatorSettings(enable_duplicate_source_asset_keys=True)
)


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=TRANSLATOR,
    pool=WAREHOUSE_POOL,
)
def dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
    """`dbt build` (models, data tests as checks) at the pipeline clock; unit tests run in CI."""
    settings = load_settings()
    # The pool serialises Dagster runs; the run lock (which `bis run` holds throughout) keeps
    # a `bis run` from writing while dbt does. Held until dbt's connections are closed.
    holder = f"dagster run {context.run_id} (dbt_models)"
    with run_lock(settings.data_dir, holder), taking_turns(settings.warehouse, "dbt build"):
        yield from _build(context, dbt, settings)
        publish_warehouse(settings, as_of=as_of(settings=settings))  # after a good build


def _build(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, settings: Settings
) -> Iterator[Any]:
    # dagster-dbt starts dbt (and reads the profile) with this process's environment: the
    # data dir as an absolute path, and the clock as a variable (not a var), which keeps dbt's
    # partial parsing usable. Set for the start only.
    shadow_marts.prepare(settings.warehouse)  # PostgreSQL: build the marts beside the live ones
    with temporary_environ(dbt_env(settings, as_of(settings=settings))):
        invocation = dbt.cli(
            ["build", "--vars", json.dumps(dbt_vars()), *SKIP_UNIT_TESTS], context=context
        )
    stream = invocation.stream()
    # Row counts query the relations the manifest names; on PostgreSQL the marts are built
    # in the shadow schema and swapped in after, so there they are left out.
    events = stream.fetch_row_counts() if settings.warehouse.is_duckdb else stream
    # DuckDB admits one writer: kpi_daily's KPI table is read once dbt has exited, so its
    # materialization (and everything after it) is held back until then.
    held: list[Any] = []
    kpi_output = None
    for event in events:
        is_kpi = (
            isinstance(event, dg.Output)
            and context.asset_key_for_output(event.output_name) == KPI_DAILY
        )
        if kpi_output is None and is_kpi:
            kpi_output = event
        elif kpi_output is not None:
            held.append(event)
        else:
            yield event
    shadow_marts.swap_in(settings.warehouse)  # the stream raised if the build failed
    adapter = invocation.adapter
    try:
        if kpi_output is not None:
            # Through the adapter that fetched the row counts: DuckDB refuses a second
            # connection to one file with different settings in the same process.
            with adapter.connection_named("bis_headline_kpis"):
                _, table = adapter.execute(LATEST_KPIS_SQL, fetch=True)
            kpi_output = with_kpi_metadata(kpi_output, table.rows[0] if table.rows else None)
    finally:
        release_adapter_connections(adapter)
    if kpi_output is not None:
        yield kpi_output
        yield from held


def with_kpi_metadata(output: dg.Output, row: Any) -> dg.Output:
    """kpi_daily's materialization with the headline KPIs beside baseline and target."""
    latest = kpis_from_row(row)
    if latest is None:
        return output
    day, values = latest
    numbers = {
        name: dg.MetadataValue.float(float(v)) for name, v in values.items() if v is not None
    }
    return output.with_metadata(
        {
            **output.metadata,
            "kpi_date": day,
            "headline_kpis": dg.MetadataValue.md(kpi_markdown(values)),
            **numbers,
        }
    )
