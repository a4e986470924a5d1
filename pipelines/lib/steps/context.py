"""What one run decides once: the pipeline clock, its run ids and the guardrails.

`bis run`, `bis send`, `bis simulate` and the Dagster assets and ops all build theirs with
`build_run_context`, so a plan id or a send run id means the same thing whichever path
wrote it: `<kind>-<pipeline clock>-<token>`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from pipelines.lib.clock import as_of as pipeline_clock
from pipelines.lib.messaging.policy import Guardrails
from pipelines.lib.settings import Settings
from pipelines.lib.warehouse import Connection, open_warehouse

# Opens a writing warehouse connection: `bis run` opens the file, Dagster its resource.
Opener = Callable[[], AbstractContextManager[Connection]]


class StepResult(Protocol):
    """What every step returns: whether it failed, and its lines for the terminal."""

    @property
    def failed(self) -> bool: ...

    def lines(self) -> list[str]: ...


@dataclass(frozen=True)
class RunContext:
    settings: Settings
    as_of: datetime  # the pipeline clock every rule of this run reads
    token: str  # ties the ids of one run together; unique per run
    guardrails: Guardrails = field(default_factory=Guardrails)

    def run_id(self, kind: str) -> str:
        return f"{kind}-{self.as_of:%Y%m%dT%H%M%SZ}-{self.token}"

    @property
    def plan_id(self) -> str:
        return self.run_id("plan")

    @property
    def send_run_id(self) -> str:
        return self.run_id("send")


def build_run_context(
    settings: Settings,
    as_of: datetime | str | None = None,
    *,
    guardrails: Guardrails | None = None,
    token: str | None = None,
) -> RunContext:
    """The run's clock (explicit, else the settings' `BIS_AS_OF`, else now), ids and guardrails.

    `token` is the Dagster run id in Dagster (so a ledger row names the run that wrote it);
    elsewhere a random one.
    """
    return RunContext(
        settings=settings,
        as_of=pipeline_clock(as_of, settings),
        token=(token or uuid.uuid4().hex).replace("-", "")[:8],
        guardrails=guardrails or Guardrails(),
    )


def warehouse_opener(settings: Settings) -> Opener:
    """Opens the settings' warehouse for writing, as the command line does."""

    def connect() -> AbstractContextManager[Connection]:
        return open_warehouse(settings.warehouse)

    return connect
