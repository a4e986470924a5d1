"""Which environment variables the sender needs per BIS_ENV, and keeping secrets out of output.

Staging and prod send through SendGrid (staging in sandbox mode), so both need the API key and
a real sender identity; the demo defaults in `messaging.runtime` are for dev only. Dev needs
nothing while its sender is the outbox, and the same four variables if it opts into SendGrid.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from pipelines.lib.settings import ENVIRONMENTS

SENDER_SETTINGS = (
    "SENDGRID_API_KEY",
    "BIS_FROM_EMAIL",
    "BIS_UNSUBSCRIBE_URL",
    "BIS_POSTAL_ADDRESS",
)
SENDERS = ("outbox", "sendgrid")
_SECRET_MARKERS = ("KEY", "SECRET", "TOKEN", "PASSWORD")
REDACTED = "<redacted>"
# Shorter "secrets" would scrub ordinary words out of unrelated lines.
_MIN_SCRUB_LENGTH = 4


def _check_env(env: str) -> None:
    if env not in ENVIRONMENTS:
        raise ValueError(f"BIS_ENV={env!r} is not one of {', '.join(ENVIRONMENTS)}")


def sender_kind_for(env: str, environ: Mapping[str, str] = os.environ) -> str:
    """`BIS_EMAIL_SENDER`, or its default: outbox in dev, sendgrid in staging and prod."""
    _check_env(env)
    kind = environ.get("BIS_EMAIL_SENDER", "").strip()
    if not kind:
        return "outbox" if env == "dev" else "sendgrid"
    if kind not in SENDERS:
        raise ValueError(f"BIS_EMAIL_SENDER={kind!r} is not one of {', '.join(SENDERS)}")
    return kind


def required_settings(env: str, environ: Mapping[str, str] = os.environ) -> list[str]:
    """Variables that must be set for the sender of `env` (in `SENDER_SETTINGS` order)."""
    if env == "dev" and sender_kind_for(env, environ) == "outbox":
        return []
    _check_env(env)
    return list(SENDER_SETTINGS)


def missing_settings(env: str, environ: Mapping[str, str] = os.environ) -> list[str]:
    """Required variables that are unset or blank."""
    return [name for name in required_settings(env, environ) if not environ.get(name, "").strip()]


def check_sender_environment(env: str, environ: Mapping[str, str] = os.environ) -> None:
    """Raise one ValueError naming every missing variable; the message holds no values."""
    missing = missing_settings(env, environ)
    if missing:
        kind = sender_kind_for(env, environ)
        raise ValueError(
            f"BIS_ENV={env}: the {kind} sender needs {', '.join(missing)} "
            f"(not set; see .env.example). Nothing was sent."
        )


def is_secret(name: str) -> bool:
    upper = name.upper()
    return any(marker in upper for marker in _SECRET_MARKERS)


def redact(name: str, value: str | None) -> str:
    """`value` fit for printing: secrets become `<redacted>` (or `<not set>`), never a part."""
    if value is None or not value.strip():
        return "<not set>"
    return REDACTED if is_secret(name) else value


def scrub_secrets(lines: Iterable[str], environ: Mapping[str, str] = os.environ) -> list[str]:
    """`lines` with the value of every secret variable in `environ` replaced by `<redacted>`.

    A last line of defence for text we do not control (exception messages, driver errors).
    """
    secrets = sorted(
        {
            value.strip()
            for name, value in environ.items()
            if is_secret(name) and len(value.strip()) >= _MIN_SCRUB_LENGTH
        },
        key=len,
        reverse=True,
    )
    result = []
    for line in lines:
        for secret in secrets:
            line = line.replace(secret, REDACTED)
        result.append(line)
    return result
