"""The dev sender: one RFC 5322 `.eml` file per message under `<outbox>/<YYYY-MM-DD>/`.

Each file carries every header a real send would have, so a developer can open it in a
mail client and check the unsubscribe link, footer and personalisation. Files are written
atomically (temp file, then a hard link that fails if the name exists), so a crash never
leaves half a message and a re-run or a concurrent run never writes a second copy: an
existing `<send_id>.eml` is reported `sent` again with its original Message-ID.
"""

from __future__ import annotations

import contextlib
import email.policy
import logging
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime
from pathlib import Path

from pipelines.lib.email.addresses import email_address_problem
from pipelines.lib.email.headers import address_header, unstructured_header
from pipelines.lib.email.message import (
    EmailSender,
    OutgoingBatch,
    ProviderAccountError,
    Recipient,
    RenderedEmail,
    SenderIdentity,
    SendOutcome,
    send_id_problem,
)
from pipelines.lib.email.render import TemplateRenderer, TemplateRenderError
from pipelines.lib.faults import FAULT_ERRNOS, about, machine_fault

logger = logging.getLogger(__name__)


class OutboxUnwritable(ProviderAccountError):
    """The outbox folder cannot take messages (disk full, read-only, no permission).

    Like a refused account it is no message's fault: `outcomes` holds the recipients done
    before it; the rest were not written (write_once leaves nothing half-written) and may be
    sent again once the fault is fixed.
    """


def message_id_for(send_id: str, identity: SenderIdentity) -> str:
    """Deterministic, so the same send always carries the same Message-ID."""
    return f"<{send_id}@{identity.domain}>"


def build_message(
    rendered: RenderedEmail,
    recipient: Recipient,
    batch: OutgoingBatch,
    identity: SenderIdentity,
    *,
    message_id: str,
    date: datetime,
) -> EmailMessage:
    """The full MIME message (multipart/alternative: text, then html).

    From, To and Subject carry untrusted text, so they are built by headers.py (cleaned,
    RFC 2047-encoded, folded) and stored as prepared headers: the library's header registry
    would decode an encoded word in a name and write the decoded text back raw.
    """
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = address_header("From", identity.from_name, identity.from_email)
    message["To"] = address_header("To", recipient.name, recipient.email)
    message["Subject"] = unstructured_header("Subject", rendered.subject)
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    message["List-Unsubscribe"] = f"<{identity.unsubscribe_link(recipient.send_id)}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["X-BIS-Send-Id"] = recipient.send_id
    message["X-BIS-Sequence"] = batch.sequence_id
    message["X-BIS-Step"] = batch.step_id
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


def write_once(target: Path, data: bytes) -> bool:
    """Create `target` with `data` atomically; False (nothing written) if it exists.

    A full disk or read-only folder raises OSError naming `target` and leaves nothing
    behind, neither the message nor its temp file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed before linking
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp", delete=False
    )
    temp = Path(handle.name)
    try:
        with about(target), handle:  # a write to an open file names no path of its own
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            # link() refuses an existing name, so two writers cannot both "create" it.
            os.link(temp, target)
        except FileExistsError:
            return False
        except OSError:
            # No hard links on this filesystem (or a fault of the disk, which the rename
            # below meets again and raises): rename is still atomic, only the race with
            # a concurrent writer of the same send_id is lost.
            if target.exists():
                return False
            os.replace(temp, target)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def _read_message_id(path: Path) -> str | None:
    with path.open("rb") as handle:
        headers = BytesParser(policy=email.policy.default).parse(handle, headersonly=True)
    value = headers.get("Message-ID")
    return str(value).strip() if value else None


class OutboxSender(EmailSender):
    provider = "outbox"

    def __init__(
        self,
        outbox_dir: Path,
        renderer: TemplateRenderer,
        identity: SenderIdentity,
        clock: Callable[[], datetime],
    ) -> None:
        self.outbox_dir = Path(outbox_dir)
        self.renderer = renderer
        self.identity = identity
        self.clock = clock

    def send(self, batch: OutgoingBatch) -> list[SendOutcome]:
        now = self.clock()
        now = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
        outcomes: list[SendOutcome] = []
        try:
            day_dirs = self._day_dirs()
            for recipient in batch.recipients:
                outcomes.append(self._send_one(batch, recipient, now, day_dirs))
        except OSError as exc:
            if exc.errno not in FAULT_ERRNOS:
                raise
            # Disk full or folder read-only: this message and the rest were not written, so
            # they must not be `failed` for good; they go back to planned for the next run.
            raise OutboxUnwritable(
                f"outbox: {machine_fault(exc)}; sending stopped", outcomes
            ) from exc
        return outcomes

    def path_for(self, send_id: str, when: datetime) -> Path:
        return self.outbox_dir / when.date().isoformat() / f"{send_id}.eml"

    def _day_dirs(self) -> list[Path]:
        if not self.outbox_dir.is_dir():
            return []
        return sorted(p for p in self.outbox_dir.iterdir() if p.is_dir())

    def _existing(self, send_id: str, day_dirs: list[Path]) -> Path | None:
        # Any day counts: a send written yesterday must not be written again today.
        for day_dir in day_dirs:
            candidate = day_dir / f"{send_id}.eml"
            if candidate.is_file():
                return candidate
        return None

    def _already_sent(self, recipient: Recipient, path: Path) -> SendOutcome:
        message_id = _read_message_id(path) or message_id_for(recipient.send_id, self.identity)
        return SendOutcome(recipient.send_id, "sent", message_id, None, 1)

    def _send_one(
        self, batch: OutgoingBatch, recipient: Recipient, now: datetime, day_dirs: list[Path]
    ) -> SendOutcome:
        problem = send_id_problem(recipient.send_id)
        if problem:
            return SendOutcome(recipient.send_id, "failed", None, problem, 0)
        existing = self._existing(recipient.send_id, day_dirs)
        if existing is not None:
            return self._already_sent(recipient, existing)
        problem = email_address_problem(recipient.email)
        if problem:
            return SendOutcome(recipient.send_id, "failed", None, problem, 0)
        try:
            rendered = self.renderer.render(batch.template, recipient)
        except TemplateRenderError as exc:
            return SendOutcome(recipient.send_id, "failed", None, str(exc), 0)
        message_id = message_id_for(recipient.send_id, self.identity)
        try:
            message = build_message(
                rendered, recipient, batch, self.identity, message_id=message_id, date=now
            )
            data = message.as_bytes()
        except (ValueError, HeaderParseError) as exc:
            return SendOutcome(recipient.send_id, "failed", None, f"cannot build message: {exc}", 0)
        target = self.path_for(recipient.send_id, now)
        try:
            created = write_once(target, data)
        except OSError as exc:
            if exc.errno in FAULT_ERRNOS:
                raise  # the machine's fault, not this message's: see send()
            logger.error("outbox: cannot write %s: %s", target, exc)
            return SendOutcome(
                recipient.send_id, "failed", None, f"cannot write {target}: {exc}", 1
            )
        if not created:  # a concurrent run wrote it first: same message, report it
            return self._already_sent(recipient, target)
        return SendOutcome(recipient.send_id, "sent", message_id, None, 1)
