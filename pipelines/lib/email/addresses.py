"""The one rule for a sendable email address, used by the planner's SQL and by both senders.

Defined once as a regular expression that Python's `re` and DuckDB's RE2 read the same way
(explicit ASCII classes only: no `\\s`, `\\w` or anchors, whose meaning differs between the two;
both sides require a full match), plus a length cap. The planner marks an address that fails
it `suppressed` ("no valid email address") and never plans it; a sender refuses it with
"invalid email address" before any provider call, so the two can never disagree on an address.

Deliberately conservative: an address the provider would reject makes SendGrid refuse the
*whole* request of up to 1000 people. A local part is a dot-atom of ASCII `atext` (no quoted
strings, no comments); a domain is two or more hostname labels ending in an alphabetic TLD
(no IP literals, no trailing dot). Internationalised addresses: a domain whose labels are
written in punycode (`ann@xn--bcher-kva.example`) is plain ASCII and accepted; a domain or
local part in raw Unicode (SMTPUTF8), and a punycode TLD (`.xn--p1ai`), are not, in SQL and
Python alike: SMTPUTF8 delivery is not guaranteed, converting a domain to punycode cannot be
done identically in SQL, and a TLD that is not alphabetic is what a provider's check is most
likely to refuse (for the whole request). Widening the rule is a change to EMAIL_PATTERN
alone: both sides read it.
"""

from __future__ import annotations

import re

MAX_EMAIL_LENGTH = 254  # RFC 5321's path limit (256) minus the angle brackets
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TLD = r"[A-Za-z]{2,63}"
EMAIL_PATTERN = rf"{_ATEXT}+(?:\.{_ATEXT}+)*@(?:{_LABEL}\.)+{_TLD}"
_EMAIL = re.compile(EMAIL_PATTERN)


def is_valid_email(address: object) -> bool:
    """True when `address` is sendable under the one rule (see the module docstring)."""
    return (
        isinstance(address, str)
        and len(address) <= MAX_EMAIL_LENGTH
        and _EMAIL.fullmatch(address) is not None
    )


def email_address_problem(address: str | None) -> str | None:
    """Why `address` cannot be sent to, or None when it is sendable."""
    if not address:
        return "empty email address"
    if not is_valid_email(address):
        return "invalid email address"
    return None


def valid_email_sql(column: str) -> str:
    """The same rule as a DuckDB boolean expression over `column` (false for NULL).

    `column` is SQL text chosen by the caller (e.g. `u.email`), never user data.
    """
    pattern = "'" + EMAIL_PATTERN.replace("'", "''") + "'"
    return (
        f"coalesce(length({column}) <= {MAX_EMAIL_LENGTH}"
        f" and regexp_full_match({column}, {pattern}), false)"
    )


__all__ = [
    "EMAIL_PATTERN",
    "MAX_EMAIL_LENGTH",
    "email_address_problem",
    "is_valid_email",
    "valid_email_sql",
]
