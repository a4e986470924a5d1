"""Where things live and which environment we are in: read from the environment only."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENVIRONMENTS = ("dev", "staging", "prod")
PROJECT_ROOT = Path(__file__).resolve().parents[2]
SEQUENCES_DIR = PROJECT_ROOT / "sequences"
TEMPLATES_DIR = SEQUENCES_DIR / "templates"
FLAGS_FILE = PROJECT_ROOT / "flags" / "flags.yaml"


@dataclass(frozen=True)
class Settings:
    env: str
    data_dir: Path
    # Outside dev a pipeline clock more than 15 minutes ahead of the machine's is refused
    # unless this is set (`BIS_ALLOW_FUTURE_CLOCK=1` or `--allow-future-clock`).
    allow_future_clock: bool = False

    @property
    def landing_events_dir(self) -> Path:
        return self.data_dir / "landing" / "events"

    @property
    def landing_email_events_dir(self) -> Path:
        return self.data_dir / "landing" / "email_events"

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse.duckdb"

    @property
    def outbox_dir(self) -> Path:
        return self.data_dir / "outbox"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"


def load_settings() -> Settings:
    """Settings from `BIS_ENV` and `BIS_DATA_DIR` (defaults: dev, ./data from the working dir)."""
    env = os.environ.get("BIS_ENV", "dev").strip() or "dev"
    if env not in ENVIRONMENTS:
        raise ValueError(f"BIS_ENV={env!r} is not one of {', '.join(ENVIRONMENTS)}")
    data_dir = Path(os.environ.get("BIS_DATA_DIR", "").strip() or "data")
    allow_future = os.environ.get("BIS_ALLOW_FUTURE_CLOCK", "").strip().lower()
    if allow_future not in ("", "0", "1", "true", "false", "yes", "no"):
        raise ValueError(f"BIS_ALLOW_FUTURE_CLOCK={allow_future!r} is not one of 1, 0")
    return Settings(
        env=env,
        data_dir=data_dir.resolve(),
        allow_future_clock=allow_future in ("1", "true", "yes"),
    )
