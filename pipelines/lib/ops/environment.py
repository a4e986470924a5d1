"""Which sender settings each BIS_ENV needs, and keeping secrets out of output.

Staging and prod send through SendGrid (staging in sandbox mode), so both need the API key and
a real sender identity; the demo defaults in `messaging.runtime` are for dev only. Dev needs
nothing while its sender is the outbox, and the same four variables if it opts into SendGrid.
The values come from `Settings` (pipelines/lib/settings.py), the one reader of the environment.
"""

from __future__ import annotations

from collections.abc import Iterable

from pipelines.lib.settings import Settings, is_secret

SENDER_SETTINGS = (
    "SENDGRID_API_KEY",
    "BIS_FROM_EMAIL",
    "BIS_UNSUBSCRIBE_URL",
    "BIS_POSTAL_ADDRESS",
)
REDACTED = "<redacted>"
# Shorter "secrets" would scrub ordinary words out of unrelated lines.
_MIN_SCRUB_LENGTH = 4


def required_settings(settings: Settings) -> list[str]:
    """Variables that must be set for the sender of `settings` (in `SENDER_SETTINGS` order)."""
    if settings.env == "dev" and settings.sender_kind == "outbox":
        return []
    return list(SENDER_SETTINGS)


def missing_settings(settings: Settings) -> list[str]:
    """Required variables that are unset or blank."""
    present = settings.sender_variables()
    return [name for name in required_settings(settings) if name not in present]


def check_sender_environment(settings: Settings) -> None:
    """Raise one ValueError naming every missing variable; the message holds no values."""
    missing = missing_settings(settings)
    if missing:
        raise ValueError(
            f"BIS_ENV={settings.env}: the {settings.sender_kind} sender needs "
            f"{', '.join(missing)} (not set; see .env.example). Nothing was sent."
        )


def redact(name: str, value: str | None) -> str:
    """`value` fit for printing: secrets become `<redacted>` (or `<not set>`), never a part."""
    if value is None or not value.strip():
        return "<not set>"
    return REDACTED if is_secret(name) else value


def scrub_secrets(lines: Iterable[str], secrets: Iterable[str]) -> list[str]:
    """`lines` with every one of `secrets` replaced by `<redacted>`.

    A last line of defence for text we do not control (exception messages, driver errors).
    """
    ordered = sorted(
        {value.strip() for value in secrets if len(value.strip()) >= _MIN_SCRUB_LENGTH},
        key=len,
        reverse=True,
    )
    result = []
    for line in lines:
        for secret in ordered:
            line = line.replace(secret, REDACTED)
        result.append(line)
    return result
