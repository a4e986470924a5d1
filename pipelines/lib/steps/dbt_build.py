"""dbt build: staging → intermediate → marts, with the data tests, at the run's clock.

The Dagster path runs the same build through dagster-dbt (`pipelines/defs/dbt/`), which
turns each node into an asset and each data test into a check.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.lib.dbt import DbtBuildResult, run_dbt_build
from pipelines.lib.kpis import kpi_lines, latest_kpis
from pipelines.lib.steps.context import RunContext
from pipelines.lib.warehouse import open_warehouse

MAX_FAILURES_SHOWN = 20


@dataclass(frozen=True)
class DbtStepResult:
    build: DbtBuildResult
    kpi_date: str | None = None
    kpis: dict[str, float | None] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return not self.build.success

    def lines(self) -> list[str]:
        counts = ", ".join(f"{status} {n}" for status, n in sorted(self.build.counts.items()))
        lines = [f"dbt build: {'FAILED' if self.failed else 'ok'} ({counts})"]
        if self.failed:
            lines += [f"dbt:   {failure}" for failure in self.build.failures[:MAX_FAILURES_SHOWN]]
        elif self.kpi_date is not None:
            lines.append(f"KPIs as of {self.kpi_date}:")
            lines += [f"  {line}" for line in kpi_lines(self.kpis)]
        return lines


def dbt_step(run: RunContext, dbt_args: tuple[str, ...] = ()) -> DbtStepResult:
    """`dbt build`, everything unless `dbt_args` narrows it (the simulation's daily runs);
    then the latest KPIs, read once dbt has let go of the warehouse."""
    build = run_dbt_build(run.settings, run.as_of, *dbt_args)
    if not build.success:
        return DbtStepResult(build)
    with open_warehouse(run.settings.warehouse, read_only=True) as con:
        latest = latest_kpis(con)
    if latest is None:
        return DbtStepResult(build)
    day, values = latest
    return DbtStepResult(build, day, values)
