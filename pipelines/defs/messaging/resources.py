"""The email sender: outbox files in dev, SendGrid elsewhere (docs/architecture.md §3)."""

import dagster as dg
from pydantic import Field

from pipelines.defs.resources import from_environment, settings_with
from pipelines.lib.email import EmailSender
from pipelines.lib.messaging.runtime import build_sender
from pipelines.lib.settings import Settings

# Resource field -> the variable it stands for (pipelines/lib/settings.py parses them all).
SENDER_FIELDS = {
    "env": "BIS_ENV",
    "email_sender": "BIS_EMAIL_SENDER",
    "sendgrid_api_key": "SENDGRID_API_KEY",
    "sendgrid_host": "SENDGRID_HOST",
    "sendgrid_sandbox": "SENDGRID_SANDBOX",
    "from_email": "BIS_FROM_EMAIL",
    "from_name": "BIS_FROM_NAME",
    "unsubscribe_url": "BIS_UNSUBSCRIBE_URL",
    "postal_address": "BIS_POSTAL_ADDRESS",
    "app_url": "BIS_APP_URL",
}


class EmailSenderResource(dg.ConfigurableResource):
    """Builds the EmailSender for BIS_ENV / BIS_EMAIL_SENDER. Each field comes from its
    variable through dg.EnvVar, so the UI names the variable and never shows the API key; an
    empty field means the variable as it is when the run starts (or its default)."""

    env: str = Field(default="", description="BIS_ENV: dev | staging | prod")
    email_sender: str = Field(
        default="", description="BIS_EMAIL_SENDER: outbox | sendgrid (empty: outbox in dev)"
    )
    sendgrid_api_key: str = Field(default="", description="SENDGRID_API_KEY (never shown)")
    sendgrid_host: str = Field(default="", description="SENDGRID_HOST")
    sendgrid_sandbox: str = Field(
        default="", description="SENDGRID_SANDBOX: 1 | 0 (empty: sandbox in staging only)"
    )
    from_email: str = Field(default="", description="BIS_FROM_EMAIL")
    from_name: str = Field(default="", description="BIS_FROM_NAME")
    unsubscribe_url: str = Field(default="", description="BIS_UNSUBSCRIBE_URL")
    postal_address: str = Field(default="", description="BIS_POSTAL_ADDRESS")
    app_url: str = Field(default="", description="BIS_APP_URL")

    def settings(self) -> Settings:
        return settings_with(self, SENDER_FIELDS)

    def sender(self) -> EmailSender:
        return build_sender(self.settings())


def email_sender_resource() -> EmailSenderResource:
    return EmailSenderResource(**from_environment(SENDER_FIELDS))
