"""How simulated users respond to the email they actually received.

Each user's outcome for the simulated sequence is decided once, by a coin with the user's own
seed: a treatment user whose first email of the sequence is in the outbox converts with
probability base + true_lift; a held-out user (no email, by design) and a treatment user the
email never reached (failed, suppressed, cancelled, unknown) convert with the base rate.
Converting means doing all four onboarding steps within about three days, well inside the
goal's 14-day window; some non-converters do one or two steps and stop, as real users do.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from pipelines.lib.simulation.events import (
    SimulatedEvent,
    onboarding_step_events,
    webhook_events,
)

# A sent email is still undecided while its row may yet go out; these never will.
NOT_RECEIVED_STATUSES = ("failed", "suppressed", "cancelled", "unknown")
PARTIAL_START_RATE = 0.4  # non-converters who do step 1 anyway
PARTIAL_SECOND_STEP_RATE = 0.35  # of those, who also do step 2
OPEN_RATE = 0.45
CLICK_RATE = 0.08
CONVERTER_OPEN_RATE = 0.85
CONVERTER_CLICK_RATE = 0.5


@dataclass(frozen=True)
class Outcome:
    user_id: str
    variant: str  # treatment | holdout
    received_email: bool
    response_probability: float
    converted: bool
    decided_at: datetime


@dataclass
class DayResponses:
    outcomes: list[Outcome]
    events: list[SimulatedEvent]
    webhook: list[tuple[datetime, dict]]


def received_send_ids(outbox_dir: Path) -> set[str]:
    """Every email the outbox sender wrote: `<outbox>/<date>/<send_id>.eml`."""
    if not outbox_dir.exists():
        return set()
    return {path.stem for path in outbox_dir.glob("*/*.eml")}


def _ledger_rows(con: duckdb.DuckDBPyConnection, sequence_id: str) -> list[tuple]:
    return con.execute(
        """
        select user_id, send_id, email, variant, status
        from messaging.sends
        where sequence_id = ?
        order by user_id, due_at, planned_at
        """,
        [sequence_id],
    ).fetchall()


def user_rng(seed: int, user_id: str, purpose: str) -> random.Random:
    """One generator per user and purpose: outcomes do not depend on processing order."""
    return random.Random(f"{seed}:{purpose}:{user_id}")


class ResponseModel:
    """The simulated audience of one sequence: decides outcomes, remembers what it reported."""

    def __init__(self, *, sequence_id: str, base_rate: float, true_lift: float, seed: int):
        self.sequence_id = sequence_id
        self.base_rate = base_rate
        self.true_lift = true_lift
        self.seed = seed
        self.decided: set[str] = set()  # users whose outcome is drawn
        self._reported: set[str] = set()  # send_ids with webhook events written

    def respond(
        self, con: duckdb.DuckDBPyConnection, received: set[str], clock: datetime
    ) -> DayResponses:
        """Decide the outcome of every user whose arm and delivery are now known.

        `clock` is the simulated time of the run that just sent: the moment users get their
        email (the ledger's sent_at is wall-clock time, which a simulation must not use).
        """
        by_user: dict[str, list[tuple]] = {}
        for row in _ledger_rows(con, self.sequence_id):
            by_user.setdefault(row[0], []).append(row)
        day = DayResponses([], [], [])
        for user_id, rows in by_user.items():
            if user_id in self.decided:
                # Emails after the decision still get delivery and engagement events.
                self._engagement(day, rows, received, clock, converted=False)
                continue
            outcome = self._decide(user_id, rows, received, clock)
            if outcome is None:
                continue  # planned, deferred or capped: it may still go out
            day.outcomes.append(outcome)
            self.decided.add(user_id)
            rng = user_rng(self.seed, user_id, "steps")
            if outcome.converted:
                day.events += onboarding_step_events(rng, user_id, outcome.decided_at, steps=4)
            elif rng.random() < PARTIAL_START_RATE:
                steps = 2 if rng.random() < PARTIAL_SECOND_STEP_RATE else 1
                day.events += onboarding_step_events(rng, user_id, outcome.decided_at, steps)
            self._engagement(day, rows, received, clock, converted=outcome.converted)
        return day

    def _decide(
        self, user_id: str, rows: list[tuple], received: set[str], clock: datetime
    ) -> Outcome | None:
        variant = rows[0][3]
        if variant == "holdout":
            got_email = False
        elif any(r[1] in received for r in rows):
            got_email = True
        elif all(r[4] in NOT_RECEIVED_STATUSES for r in rows):
            got_email = False
        else:
            return None
        probability = self.base_rate + (self.true_lift if got_email else 0.0)
        probability = min(1.0, max(0.0, probability))
        converted = user_rng(self.seed, user_id, "outcome").random() < probability
        return Outcome(user_id, variant, got_email, probability, converted, clock)

    def _engagement(
        self,
        day: DayResponses,
        rows: list[tuple],
        received: set[str],
        clock: datetime,
        *,
        converted: bool,
    ) -> None:
        """Delivery, opens and clicks for received emails not reported before."""
        for _user, send_id, email, _variant, _status in rows:
            if send_id not in received or send_id in self._reported:
                continue
            self._reported.add(send_id)
            rng = user_rng(self.seed, send_id, "engagement")
            open_rate, click_rate = (
                (CONVERTER_OPEN_RATE, CONVERTER_CLICK_RATE)
                if converted
                else (OPEN_RATE, CLICK_RATE)
            )
            opened = rng.random() < open_rate
            day.webhook += webhook_events(
                rng,
                send_id=send_id,
                email=email,
                sent_at=clock,
                opened=opened,
                clicked=rng.random() < click_rate,
            )
