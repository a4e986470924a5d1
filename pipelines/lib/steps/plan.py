"""Plan: who is due which step at the run's clock, and the decision for each
(docs/architecture.md §6-§8), recorded in messaging.sends under the run's plan id."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.lib.flags import EnvSetting
from pipelines.lib.messaging.plan import PlanResult, plan_messages
from pipelines.lib.messaging.report import plan_summary
from pipelines.lib.messaging.runtime import PlanInputs, load_plan_inputs
from pipelines.lib.steps.context import Opener, RunContext


@dataclass(frozen=True)
class PlanStepResult:
    plan: PlanResult

    @property
    def failed(self) -> bool:
        return False  # a clock the ledger refuses raises PipelineClockError instead

    def lines(self) -> list[str]:
        return [plan_summary(self.plan)]


def plan_step(
    run: RunContext,
    connect: Opener,
    *,
    inputs: PlanInputs | None = None,
    flag_overrides: dict[str, EnvSetting] | None = None,
) -> PlanStepResult:
    """Plan with the committed sequences and flags, or with `inputs` (the simulation);
    `flag_overrides` are the Launchpad's edits for this one run."""
    inputs = inputs or load_plan_inputs()
    with connect() as con:
        result = plan_messages(
            con,
            sequences=inputs.sequences,
            flags=inputs.flags,
            env=run.settings.env,
            as_of=run.as_of,
            plan_id=run.plan_id,
            guardrails=run.guardrails,
            flag_overrides=flag_overrides,
            allow_future_clock=run.settings.allow_future_clock,
        )
    return PlanStepResult(result)
