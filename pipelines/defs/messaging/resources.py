"""The email sender: outbox files in dev, SendGrid elsewhere (docs/architecture.md §3)."""

import os

import dagster as dg
from pydantic import Field

from pipelines.lib.email import EmailSender
from pipelines.lib.messaging.runtime import build_sender
from pipelines.lib.settings import load_settings


class EmailSenderResource(dg.ConfigurableResource):
    """Builds the EmailSender for BIS_ENV / BIS_EMAIL_SENDER. The API key arrives through
    dg.EnvVar and is never logged or put in metadata."""

    sendgrid_api_key: str | None = Field(default=None, description="SENDGRID_API_KEY")

    def sender(self) -> EmailSender:
        return build_sender(load_settings(), api_key=self.sendgrid_api_key)


def email_sender_resource() -> EmailSenderResource:
    # dg.EnvVar fails the launch when unset; the outbox in dev needs no key at all.
    if os.environ.get("SENDGRID_API_KEY"):
        return EmailSenderResource(sendgrid_api_key=dg.EnvVar("SENDGRID_API_KEY"))
    return EmailSenderResource()
