"""Where the messaging inputs live and which sender an environment uses."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from pipelines.lib.clock import wall_clock
from pipelines.lib.email import (
    EmailSender,
    OutboxSender,
    SenderIdentity,
    SendGridSender,
    TemplateRenderer,
)
from pipelines.lib.flags import FlagSet, load_flags
from pipelines.lib.sequences import Sequence, load_sequences
from pipelines.lib.settings import FLAGS_FILE, SEQUENCES_DIR, TEMPLATES_DIR, Settings

DEMO_IDENTITY = {
    "BIS_FROM_EMAIL": "hello@example.com",
    "BIS_UNSUBSCRIBE_URL": "https://example.com/unsubscribe",
    "BIS_POSTAL_ADDRESS": "Example Inc., 1 Example Street, Springfield",
    "BIS_APP_URL": "https://app.example.com",
}


@dataclass(frozen=True)
class PlanInputs:
    sequences: list[Sequence]
    flags: FlagSet


def load_plan_inputs() -> PlanInputs:
    return PlanInputs(load_sequences(SEQUENCES_DIR), load_flags(FLAGS_FILE))


def new_id(prefix: str, as_of: datetime) -> str:
    return f"{prefix}-{as_of:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def sender_identity(settings: Settings) -> SenderIdentity:
    """The one place the sender identity is built: the settings, else the demo identity
    (outside dev `check_sender_environment` refuses to start without the real one)."""
    return SenderIdentity(
        from_email=settings.from_email or DEMO_IDENTITY["BIS_FROM_EMAIL"],
        from_name=settings.from_name,
        unsubscribe_url=settings.unsubscribe_url or DEMO_IDENTITY["BIS_UNSUBSCRIBE_URL"],
        postal_address=settings.postal_address or DEMO_IDENTITY["BIS_POSTAL_ADDRESS"],
        app_url=settings.app_url or DEMO_IDENTITY["BIS_APP_URL"],
    )


def build_sender(settings: Settings) -> EmailSender:
    """The EmailSender for this environment (docs/architecture.md §3), the one place the
    sender is chosen (`settings.sender_kind`); outside dev it refuses to start without the
    sender settings, naming every missing one (values are never shown)."""
    from pipelines.lib.ops.environment import check_sender_environment

    check_sender_environment(settings)
    identity = sender_identity(settings)
    renderer = TemplateRenderer(TEMPLATES_DIR, identity)
    if settings.sender_kind == "outbox":
        return OutboxSender(settings.outbox_dir, renderer, identity, clock=wall_clock)
    if settings.sendgrid_api_key is None:
        raise ValueError("the sendgrid sender needs SENDGRID_API_KEY")
    return SendGridSender(
        api_key=settings.sendgrid_api_key.get_secret_value(),
        host=settings.sendgrid_host,
        renderer=renderer,
        identity=identity,
        sandbox=settings.use_sandbox,
    )
