"""The headline KPIs, next to the baseline they must beat and the targets.

Definitions: docs/architecture.md §5.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb


@dataclass(frozen=True)
class Kpi:
    column: str
    label: str
    baseline: float
    target: float | None  # None: no numeric target, lower is better
    lower_is_better: bool = False


HEADLINE_KPIS = (
    Kpi("onboarding_conversion_rate", "Onboarding conversion", 0.278, 0.65),
    Kpi("onboarding_completion_rate", "Onboarding completion", 0.48, 0.75),
    Kpi("inactivity_rate", "Inactivity", 0.722, None, lower_is_better=True),
)


LATEST_KPIS_SQL = (
    f"select date, {', '.join(kpi.column for kpi in HEADLINE_KPIS)}"
    " from marts.kpi_daily order by date desc limit 1"
)


def kpis_from_row(row: Sequence | None) -> tuple[str, dict[str, float | None]] | None:
    """(date, {kpi column: value}) from a LATEST_KPIS_SQL row, whatever the driver."""
    if row is None:
        return None
    values = {
        kpi.column: None if row[i + 1] is None else float(row[i + 1])
        for i, kpi in enumerate(HEADLINE_KPIS)
    }
    return str(row[0]), values


def latest_kpis(con: duckdb.DuckDBPyConnection) -> tuple[str, dict[str, float | None]] | None:
    """The headline KPIs from the last row of marts.kpi_daily, or None if it is empty."""
    return kpis_from_row(con.execute(LATEST_KPIS_SQL).fetchone())


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def kpi_markdown(values: dict[str, float | None]) -> str:
    """A markdown table: KPI, now, baseline, target."""
    lines = ["| KPI | now | baseline | target |", "|---|---|---|---|"]
    for kpi in HEADLINE_KPIS:
        target = _pct(kpi.target) if kpi.target is not None else "lower"
        lines.append(
            f"| {kpi.label} | {_pct(values.get(kpi.column))} | {_pct(kpi.baseline)} | {target} |"
        )
    return "\n".join(lines)


def kpi_lines(values: dict[str, float | None]) -> list[str]:
    """One line per KPI for the terminal."""
    lines = []
    for kpi in HEADLINE_KPIS:
        target = f", target {_pct(kpi.target)}" if kpi.target is not None else ""
        lines.append(
            f"{kpi.label:<22} {_pct(values.get(kpi.column)):>6}"
            f"  (baseline {_pct(kpi.baseline)}{target})"
        )
    return lines
