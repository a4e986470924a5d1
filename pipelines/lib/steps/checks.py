"""Invariant checks: the same evaluation for `bis run` (a `check FAILED:` line, exit 1) and
for the Dagster asset checks (an AssetCheckResult)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pipelines.lib.invariants import Invariant, find_violations
from pipelines.lib.steps.context import Opener

EXAMPLES_IN_LINE = 3


@dataclass(frozen=True)
class CheckOutcome:
    invariant: Invariant
    violations: int
    examples: list[tuple]

    @property
    def passed(self) -> bool:
        return self.violations == 0

    @property
    def name(self) -> str:
        return self.invariant.name

    def why(self) -> str:
        shown = "; ".join(str(example) for example in self.examples[:EXAMPLES_IN_LINE])
        return f"{self.violations} violation(s) of '{self.invariant.description}': {shown}"


@dataclass(frozen=True)
class ChecksResult:
    label: str  # what the checks guard, e.g. "raw events", "ledger"
    outcomes: list[CheckOutcome]

    @property
    def failed(self) -> bool:
        return any(not outcome.passed for outcome in self.outcomes)

    def lines(self) -> list[str]:
        passed = sum(outcome.passed for outcome in self.outcomes)
        lines = [f"checks ({self.label}): {passed} of {len(self.outcomes)} passed"]
        lines += [
            f"check FAILED: {outcome.name}: {outcome.why()}"
            for outcome in self.outcomes
            if not outcome.passed
        ]
        return lines


def check_invariant(connect: Opener, invariant: Invariant) -> CheckOutcome:
    """One invariant (a Dagster asset check evaluates one at a time)."""
    with connect() as con:
        found = find_violations(con, invariant)
    return CheckOutcome(invariant, found.count, found.examples)


def checks_step(connect: Opener, label: str, invariants: Iterable[Invariant]) -> ChecksResult:
    """Every invariant of a group, on one connection."""
    with connect() as con:
        outcomes = []
        for invariant in invariants:
            found = find_violations(con, invariant)
            outcomes.append(CheckOutcome(invariant, found.count, found.examples))
    return ChecksResult(label, outcomes)
