"""What every benchmark stage shares: its configuration and a timer."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from pipelines.lib.clock import parse_timestamp
from pipelines.lib.engine.url import parse_warehouse_url
from pipelines.lib.settings import Settings

Result = dict[str, Any]


class Config:
    """What a stage needs: the size's work folder, the clocks, and the run options."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.work = Path(raw["work"])
        self.t0 = parse_timestamp(raw["t0"])
        self.t1 = self.t0 + timedelta(days=1)
        self.events = int(raw.get("events", 0))
        self.check = bool(raw.get("check", False))

    def settings(self, name: str = "warehouse") -> Settings:
        return Settings(env="dev", data_dir=self.work / name)

    def postgres_settings(self, url_key: str = "postgres_url") -> Settings:
        """The size's database on the run's PostgreSQL server (`--engine postgres`); the data
        dir holds only dbt's parse state."""
        return Settings(
            env="dev",
            data_dir=self.work / "warehouse_postgres",
            warehouse=parse_warehouse_url(self.raw[url_key]),
        )


def timed(work: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, value) of one call: a stage times only its own work."""
    start = time.perf_counter()
    value = work()
    return time.perf_counter() - start, value
