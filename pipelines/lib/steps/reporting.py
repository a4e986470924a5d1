"""Reporting: the dashboard, written from the warehouse at the run's clock."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pipelines.lib.kpis import kpi_lines
from pipelines.lib.steps.context import Opener, RunContext

if TYPE_CHECKING:
    from pipelines.lib.reporting import DashboardResult


@dataclass(frozen=True)
class DashboardStepResult:
    dashboard: DashboardResult

    @property
    def failed(self) -> bool:
        return False

    def lines(self) -> list[str]:
        lines = [f"dashboard: {self.dashboard.path}"]
        if self.dashboard.kpis:
            lines += [f"  {line}" for line in kpi_lines(self.dashboard.kpis)]
        return lines


def dashboard_step(run: RunContext, connect: Opener) -> DashboardStepResult:
    """`$BIS_DATA_DIR/reports/dashboard.html` at the run's clock."""
    # Imported here: the dashboard reads the simulation's tables, and the simulation runs
    # these steps.
    from pipelines.lib.reporting import build_dashboard

    with connect() as con:
        result = build_dashboard(
            con,
            env=run.settings.env,
            out_path=run.settings.reports_dir / "dashboard.html",
            as_of=run.as_of,
        )
    return DashboardStepResult(result)
