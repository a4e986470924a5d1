"""Email rendering and sending behind one interface (`EmailSender`): outbox or SendGrid."""

from pipelines.lib.email.message import (
    EmailSender,
    OutgoingBatch,
    ProviderAccountError,
    Recipient,
    RenderedEmail,
    SenderIdentity,
    SendOutcome,
    SendStatus,
)
from pipelines.lib.email.outbox import OutboxSender
from pipelines.lib.email.render import (
    DEFAULT_TEMPLATES_DIR,
    NotBatchableError,
    TemplateRenderer,
    TemplateRenderError,
)
from pipelines.lib.email.retry import RetryPolicy
from pipelines.lib.email.sendgrid_sender import SendGridSender

__all__ = [
    "DEFAULT_TEMPLATES_DIR",
    "EmailSender",
    "NotBatchableError",
    "OutboxSender",
    "OutgoingBatch",
    "ProviderAccountError",
    "Recipient",
    "RenderedEmail",
    "RetryPolicy",
    "SendGridSender",
    "SendOutcome",
    "SendStatus",
    "SenderIdentity",
    "TemplateRenderError",
    "TemplateRenderer",
]
