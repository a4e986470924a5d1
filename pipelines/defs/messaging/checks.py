"""Business invariants of the ledger, checked whenever a plan is made."""

from pipelines.defs.messaging.assets import message_plan
from pipelines.defs.run_context import invariant_checks
from pipelines.lib.messaging.checks import LEDGER_INVARIANTS

ledger_checks = invariant_checks(message_plan, LEDGER_INVARIANTS)
