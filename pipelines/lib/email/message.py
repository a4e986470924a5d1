"""The data that crosses the sender interface: who gets what, from whom, and what happened.

These types are shared by the renderer, both senders and the send loop, so they hold no
behaviour beyond validation and the one derived value every sender needs (the per-send
unsubscribe link).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pipelines.lib.email.addresses import email_address_problem

SendStatus = Literal["sent", "failed", "unknown"]

# send_id becomes a file name (outbox) and a header value: keep it to a safe alphabet.
_SEND_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def send_id_problem(send_id: str) -> str | None:
    """Why `send_id` is unusable as a file name and header value, or None."""
    if not _SEND_ID.fullmatch(send_id or ""):
        return "send_id must be 1-200 characters of letters, digits, '.', '_' or '-'"
    return None


@dataclass(frozen=True)
class Recipient:
    """One user due one message. `context` is the per-user personalisation (`user.*`)."""

    send_id: str
    user_id: str
    email: str
    name: str | None
    context: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SenderIdentity:
    """Who the mail is from, and the compliance data every message must carry."""

    from_email: str
    from_name: str
    unsubscribe_url: str
    postal_address: str
    app_url: str

    def __post_init__(self) -> None:
        problem = email_address_problem(self.from_email)
        if problem:
            raise ValueError(f"sender from_email {self.from_email!r}: {problem}")
        if urlsplit(self.unsubscribe_url).scheme not in ("http", "https"):
            raise ValueError(
                f"unsubscribe_url must be an http(s) URL (List-Unsubscribe one-click needs one),"
                f" got {self.unsubscribe_url!r}"
            )
        if not self.postal_address.strip():
            # CAN-SPAM requires a valid physical postal address in every commercial email.
            raise ValueError("postal_address must not be empty: every email carries it")

    @property
    def domain(self) -> str:
        return self.from_email.rsplit("@", 1)[1].lower()

    @functools.cached_property
    def _unsubscribe_parts(self) -> tuple[str, str, str]:
        # Split once: every message of a run needs its own link.
        parts = urlsplit(self.unsubscribe_url)
        query = urlencode(parse_qsl(parts.query, keep_blank_values=True))
        fragment = f"#{parts.fragment}" if parts.fragment else ""
        return urlunsplit(parts._replace(query="", fragment="")), query, fragment

    def unsubscribe_link(self, send_id: str) -> str:
        """`{unsubscribe_url}?send_id=<send_id>`, keeping any query the URL already has."""
        head, query, fragment = self._unsubscribe_parts
        own = urlencode([("send_id", send_id)])
        return f"{head}?{query + '&' if query else ''}{own}{fragment}"


@dataclass(frozen=True)
class OutgoingBatch:
    """One template for many users; the unit the send loop hands to a sender."""

    template: str
    sequence_id: str
    step_id: str
    recipients: list[Recipient]

    def __post_init__(self) -> None:
        # A send_id twice in one batch would be sent twice: refuse before anything goes out.
        seen: set[str] = set()
        duplicates: set[str] = set()
        for recipient in self.recipients:
            if recipient.send_id in seen:
                duplicates.add(recipient.send_id)
            seen.add(recipient.send_id)
        if duplicates:
            shown = ", ".join(sorted(duplicates)[:5])
            raise ValueError(f"duplicate send_id in batch for {self.template}: {shown}")


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class SendOutcome:
    """What happened to one recipient. `attempts` counts provider calls (0 = never called)."""

    send_id: str
    status: SendStatus
    provider_message_id: str | None
    error: str | None
    attempts: int


@runtime_checkable
class EmailSender(Protocol):
    """Sends one batch; returns one outcome per recipient, in order.

    Trouble with a message (a refused request, a timeout, a bad address, a template error)
    is reported in its outcome, so the ledger records every message's fate. A fault of the
    account rather than of any message (a revoked key, a missing permission) raises
    `ProviderAccountError`: failing the messages would move their users on as if they had
    been tried. Programming errors (e.g. a malformed batch) raise too.
    """

    provider: str

    def send(self, batch: OutgoingBatch) -> list[SendOutcome]: ...


class ProviderAccountError(RuntimeError):
    """The provider refused the account, not a message: nothing in that request was accepted.

    `outcomes` holds what earlier requests of the same batch already achieved (they did go
    out); every recipient without an outcome was not sent and may be sent again.
    """

    def __init__(self, message: str, outcomes: list[SendOutcome] | None = None) -> None:
        super().__init__(message)
        self.outcomes = list(outcomes or [])
