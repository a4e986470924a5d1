"""The Dagster side of the shared steps: a run's context, and invariant checks as asset
checks. The bodies are in `pipelines/lib/steps/`; these only adapt them to Dagster."""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

from pipelines.defs.resources import WAREHOUSE_POOL, WarehouseResource
from pipelines.lib.invariants import Invariant
from pipelines.lib.messaging.policy import Guardrails
from pipelines.lib.settings import load_settings
from pipelines.lib.steps import CheckOutcome, RunContext, build_run_context, check_invariant


def dagster_run_context(
    context: dg.OpExecutionContext | dg.AssetExecutionContext,
    guardrails: Guardrails | None = None,
) -> RunContext:
    """As `bis run` builds its own: the pipeline clock now, ids tied to this Dagster run."""
    return build_run_context(load_settings(), guardrails=guardrails, token=context.run_id)


def check_result(outcome: CheckOutcome) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=outcome.passed,
        metadata={
            "violations": outcome.violations,
            "examples": dg.MetadataValue.json([list(map(str, row)) for row in outcome.examples]),
        },
        description=None if outcome.passed else outcome.why(),
    )


def _asset_check(asset: dg.AssetsDefinition, invariant: Invariant) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset,
        name=invariant.name,
        pool=WAREHOUSE_POOL,
        blocking=invariant.blocking,
        description=invariant.description,
    )
    def _check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        return check_result(check_invariant(warehouse.connect, invariant))

    return _check


def invariant_checks(
    asset: dg.AssetsDefinition, invariants: Iterable[Invariant]
) -> list[dg.AssetChecksDefinition]:
    """One asset check per invariant, evaluated as `bis run` evaluates it."""
    return [_asset_check(asset, invariant) for invariant in invariants]
