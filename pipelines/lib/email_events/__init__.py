"""SendGrid Event Webhook events: landing files → raw.email_events → ledger and suppressions."""

from pipelines.lib.email_events.apply import ApplyReport, apply_email_events
from pipelines.lib.email_events.load import EmailEventsReport, load_email_events

__all__ = ["ApplyReport", "EmailEventsReport", "apply_email_events", "load_email_events"]
