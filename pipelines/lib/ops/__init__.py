"""Operator tooling behind `bis status` and `bis flags`: plain functions returning lines."""

from pipelines.lib.ops.environment import (
    SENDER_SETTINGS,
    check_sender_environment,
    is_secret,
    missing_settings,
    redact,
    required_settings,
    scrub_secrets,
)
from pipelines.lib.ops.flags_cli import flags_list, flags_set
from pipelines.lib.ops.status import status_report

__all__ = [
    "SENDER_SETTINGS",
    "check_sender_environment",
    "flags_list",
    "flags_set",
    "is_secret",
    "missing_settings",
    "redact",
    "required_settings",
    "scrub_secrets",
    "status_report",
]
