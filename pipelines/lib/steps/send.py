"""Send: every planned ledger row still allowed, at most once (docs/architecture.md §8)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipelines.lib.email import EmailSender
from pipelines.lib.faults import machine_fault
from pipelines.lib.messaging.gate import SendGate
from pipelines.lib.messaging.report import send_summary
from pipelines.lib.messaging.runtime import build_sender
from pipelines.lib.messaging.send import (
    SendCeilingExceeded,
    SendHalted,
    SendReport,
    send_planned,
)
from pipelines.lib.settings import FLAGS_FILE
from pipelines.lib.steps.context import Opener, RunContext


@dataclass(frozen=True)
class SendStepResult:
    report: SendReport | None  # None: stopped by the ceiling before anything was sent
    stopped: str | None = None  # why sending stopped; the untried rows stay planned
    outbox: Path | None = None  # where the outbox sender wrote, in dev

    @property
    def failed(self) -> bool:
        return self.stopped is not None

    def lines(self) -> list[str]:
        lines = [send_summary(self.report)] if self.report is not None else []
        if self.stopped is not None:
            lines.append(f"send: STOPPED {self.stopped}")
        elif self.outbox is not None:
            lines.append(f"outbox: {self.outbox}")
        return lines


def send_step(
    run: RunContext, connect: Opener, *, sender: EmailSender | None = None
) -> SendStepResult:
    """Send under the run's send id, clock and ceiling, with the environment's sender
    unless one is given (Dagster's resource). A fault of the machine (disk full, read-only
    outbox) is raised as it is: one line, and the unsent rows stay planned."""
    sender = sender or build_sender(run.settings)
    with connect() as con:
        try:
            report = send_planned(
                con,
                sender=sender,
                run_id=run.send_run_id,
                max_sends_per_run=run.guardrails.max_sends_per_run,
                gate=SendGate(FLAGS_FILE, run.settings.env),
                clock=run.as_of,
            )
        except SendCeilingExceeded as ceiling:
            return SendStepResult(None, stopped=str(ceiling))
        except SendHalted as halted:
            if machine_fault(halted) is not None:
                raise
            return SendStepResult(halted.report, stopped=str(halted))
    outbox = run.settings.outbox_dir if sender.provider == "outbox" else None
    return SendStepResult(report, outbox=outbox)
