"""SendGrid Event Webhook receiver: verify signatures, land events durably, then acknowledge."""

from pipelines.lib.webhook.app import EVENTS_PATH, create_app, serve
from pipelines.lib.webhook.signature import SIGNATURE_HEADER, TIMESTAMP_HEADER
from pipelines.lib.webhook.store import append_events, split_events

__all__ = [
    "EVENTS_PATH",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "append_events",
    "create_app",
    "serve",
    "split_events",
]
