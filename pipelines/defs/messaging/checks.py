"""Business invariants of the ledger, checked whenever a plan is made."""

import dagster as dg

from pipelines.defs.messaging.assets import message_plan
from pipelines.defs.resources import WAREHOUSE_POOL, WarehouseResource
from pipelines.lib.messaging.checks import INVARIANTS, violations


def _invariant_check(name: str, description: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=message_plan, name=name, pool=WAREHOUSE_POOL, description=description)
    def _check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.connect() as con:
            rows = violations(con, name)
        return dg.AssetCheckResult(
            passed=not rows,
            metadata={
                "violations": len(rows),
                "examples": dg.MetadataValue.json([list(map(str, r)) for r in rows]),
            },
        )

    return _check


DESCRIPTIONS = {
    "no_duplicate_sends": "no (user, sequence, step, enrollment) went out twice",
    "no_send_to_suppressed": "nothing was sent to an address after it was suppressed",
    "no_send_to_holdout": "no holdout user was sent (or queued) a message",
    "every_row_resolved": "every ledger row is terminal, planned, deferred or capped",
}
ledger_checks = [_invariant_check(name, DESCRIPTIONS[name]) for name in INVARIANTS]
