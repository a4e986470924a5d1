"""Resources shared by every concern: the warehouse connection."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import dagster as dg
from pydantic import Field

from pipelines.lib.engine.url import WarehouseUrl
from pipelines.lib.settings import Settings, is_set, load_settings
from pipelines.lib.warehouse import Connection, open_warehouse

# Every asset or op that opens the warehouse declares this pool; dagster.yaml limits it to
# one, because DuckDB allows one writing process per file.
WAREHOUSE_POOL = "warehouse"
# Resource field -> the variable it stands for (pipelines/lib/settings.py parses them all).
WAREHOUSE_FIELDS = {
    "env": "BIS_ENV",
    "data_dir": "BIS_DATA_DIR",
    "warehouse_url": "BIS_WAREHOUSE_URL",
}


def from_environment(fields: Mapping[str, str]) -> dict[str, Any]:
    """`dg.EnvVar` for each field whose variable is set: the UI shows which variable
    configures it (never a secret's value) and Dagster reads it when a run starts. A field
    whose variable is unset keeps its empty default (an EnvVar would fail the launch)."""
    return {name: dg.EnvVar(variable) for name, variable in fields.items() if is_set(variable)}


def settings_with(resource: dg.ConfigurableResource, fields: Mapping[str, str]) -> Settings:
    """The settings at run time, with the resource's non-empty fields on top."""
    overrides = {variable: getattr(resource, name) for name, variable in fields.items()}
    return load_settings(overrides={k: v for k, v in overrides.items() if v})


class WarehouseResource(dg.ConfigurableResource):
    """The warehouse: `$BIS_WAREHOUSE_URL`, or in dev `$BIS_DATA_DIR/warehouse.duckdb`.
    An empty field means the variable as it is when the run starts."""

    env: str = Field(default="", description="BIS_ENV: dev | staging | prod")
    data_dir: str = Field(default="", description="BIS_DATA_DIR: landing folders, outbox, reports")
    warehouse_url: str = Field(
        default="",
        description="BIS_WAREHOUSE_URL: duckdb:///path/file.duckdb or postgresql://…"
        " (empty in dev: warehouse.duckdb in the data dir)",
    )

    def settings(self) -> Settings:
        return settings_with(self, WAREHOUSE_FIELDS)

    @property
    def url(self) -> WarehouseUrl:
        # Resolved when used, not when the definitions load: assets, dbt and the sensor all
        # read the settings at run time, so the warehouse must too.
        return self.settings().warehouse

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A writing connection with migrations applied."""
        with open_warehouse(self.url) as con:
            yield con


def default_resources() -> dict[str, dg.ConfigurableResource]:
    return {"warehouse": WarehouseResource(**from_environment(WAREHOUSE_FIELDS))}
