"""Resources shared by every concern: the warehouse connection."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from pydantic import Field

from pipelines.lib.settings import load_settings
from pipelines.lib.warehouse import open_warehouse

# Every asset or op that opens the warehouse declares this pool; dagster.yaml limits it to
# one, because DuckDB allows one writing process per file.
WAREHOUSE_POOL = "warehouse"


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse at `$BIS_DATA_DIR/warehouse.duckdb`."""

    data_dir: str = Field(
        default="", description="Folder of warehouse.duckdb; empty: $BIS_DATA_DIR at run time."
    )

    @property
    def path(self) -> Path:
        # Resolved when used, not when the definitions load: assets, dbt and the sensor all
        # read BIS_DATA_DIR at run time, so the warehouse must too.
        folder = Path(self.data_dir) if self.data_dir else load_settings().data_dir
        return folder / "warehouse.duckdb"

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A writing connection with migrations applied."""
        with open_warehouse(self.path) as con:
            yield con


def default_resources() -> dict[str, dg.ConfigurableResource]:
    return {"warehouse": WarehouseResource()}
