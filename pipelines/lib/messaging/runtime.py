"""Where the messaging inputs live and which sender an environment uses."""

from __future__ import annotations

import os
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


def sender_identity() -> SenderIdentity:
    def value(name: str) -> str:
        return os.environ.get(name, "").strip() or DEMO_IDENTITY[name]

    return SenderIdentity(
        from_email=value("BIS_FROM_EMAIL"),
        from_name=os.environ.get("BIS_FROM_NAME", "BIS"),
        unsubscribe_url=value("BIS_UNSUBSCRIBE_URL"),
        postal_address=value("BIS_POSTAL_ADDRESS"),
        app_url=value("BIS_APP_URL"),
    )


def sender_kind(settings: Settings) -> str:
    kind = os.environ.get("BIS_EMAIL_SENDER", "").strip()
    if not kind:
        kind = "outbox" if settings.env == "dev" else "sendgrid"
    if kind not in ("outbox", "sendgrid"):
        raise ValueError(f"BIS_EMAIL_SENDER={kind!r} is not one of outbox, sendgrid")
    return kind


def build_sender(settings: Settings, *, api_key: str | None = None) -> EmailSender:
    """The EmailSender for this environment (docs/architecture.md §3); outside dev it refuses
    to start without the sender settings, naming every missing one (values are never shown)."""
    from pipelines.lib.ops.environment import check_sender_environment

    environ = dict(os.environ)
    if api_key:
        environ["SENDGRID_API_KEY"] = api_key
    check_sender_environment(settings.env, environ)
    identity = sender_identity()
    renderer = TemplateRenderer(TEMPLATES_DIR, identity)
    if sender_kind(settings) == "outbox":
        return OutboxSender(settings.outbox_dir, renderer, identity, clock=wall_clock)
    key = api_key or os.environ.get("SENDGRID_API_KEY", "").strip()
    if not key:
        raise ValueError("the sendgrid sender needs SENDGRID_API_KEY")
    sandbox_default = "true" if settings.env == "staging" else "false"
    sandbox = os.environ.get("SENDGRID_SANDBOX", sandbox_default).strip().lower() == "true"
    return SendGridSender(
        api_key=key,
        host=os.environ.get("SENDGRID_HOST", "https://api.sendgrid.com"),
        renderer=renderer,
        identity=identity,
        sandbox=sandbox,
    )
