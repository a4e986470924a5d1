"""Resources shared by every concern: the warehouse connection."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from pipelines.lib.settings import load_settings
from pipelines.lib.warehouse import open_warehouse

# Every asset or op that opens the warehouse declares this pool; dagster.yaml limits it to
# one, because DuckDB allows one writing process per file.
WAREHOUSE_POOL = "warehouse"


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse at `$BIS_DATA_DIR/warehouse.duckdb`."""

    data_dir: str

    @property
    def path(self) -> Path:
        return Path(self.data_dir) / "warehouse.duckdb"

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A writing connection with migrations applied."""
        with open_warehouse(self.path) as con:
            yield con

    @contextmanager
    def connect_read_only(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with open_warehouse(self.path, read_only=True) as con:
            yield con


def default_resources() -> dict[str, dg.ConfigurableResource]:
    settings = load_settings()
    return {"warehouse": WarehouseResource(data_dir=str(settings.data_dir))}
