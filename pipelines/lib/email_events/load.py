"""Load the webhook receiver's JSON Lines files into raw.email_events.

`bis send` and `bis run` call this before planning, so it must never raise because of what
a file contains: a bad event becomes one row in raw.email_events_rejected (with its raw
text and reason) and the rest of its file loads; a file that cannot be used at all is
recorded as a file-level fault so it is not retried on every run. Every file is recorded
in raw.ingested_files with rows_read = loaded + rejected + duplicate, like product events.
Files are small (one webhook delivery each), so events are parsed in Python.
"""

from __future__ import annotations

import codecs
import hashlib
import logging
from collections import Counter
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.lib.clock import wall_clock
from pipelines.lib.email_events.validate import EmailEvent, Rejection, parse_event
from pipelines.lib.ingest.files import (
    NotRegularFileError,
    detect_format,
    open_landing_file,
    scan_landing_folder,
)
from pipelines.lib.ingest.validate import MAX_KEPT_RAW_CHARS
from pipelines.lib.warehouse import Connection, registered, serialize

log = logging.getLogger(__name__)

FILE_FORMAT = "email_events"
# The receiver caps one delivery at 5 MiB; anything far beyond that was not written by it,
# and reading it whole would cost memory for nothing.
MAX_FILE_BYTES = 64 * 1024 * 1024
_READ_CHUNK = 1024 * 1024
_MAX_MESSAGE_CHARS = 500
# What the warehouse raises for a value it refuses (as opposed to a broken disk or lock,
# which must still fail the run so it is retried).
_DATA_ERRORS = (
    duckdb.DataError,
    duckdb.InvalidInputException,
    duckdb.ConstraintException,
    pa.ArrowException,
    ValueError,
    TypeError,
)

_EVENTS_SCHEMA = pa.schema(
    [
        ("sg_event_id", pa.string()),
        ("event", pa.string()),
        ("email", pa.string()),
        ("send_id", pa.string()),
        ("sg_message_id", pa.string()),
        ("occurred_at", pa.timestamp("us", tz="UTC")),
        ("reason", pa.string()),
        ("payload", pa.string()),
        ("line_number", pa.int64()),
    ]
)


@dataclass
class EmailEventsReport:
    files: int = 0
    loaded: int = 0
    duplicate: int = 0
    rejections: Counter = field(default_factory=Counter)
    # (path, why) for files not read at all (symlinks, special files, unreadable): they
    # are not recorded, so they are reported again on the next run until fixed.
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return sum(self.rejections.values())


# line number (None: the whole file), raw text kept, error code, error message
RejectRow = tuple[int | None, str | None, str, str]


@dataclass
class ParsedFile:
    read: int = 0
    events: list[tuple[int, bytes, EmailEvent]] = field(default_factory=list)
    rejects: list[RejectRow] = field(default_factory=list)


def _kept(raw: bytes) -> str:
    # Bytes that are not UTF-8 stay recoverable as \xNN escapes, as in raw.events_rejected.
    return raw[:MAX_KEPT_RAW_CHARS].decode("utf-8", errors="backslashreplace")[:MAX_KEPT_RAW_CHARS]


def parse_events_file(data: bytes) -> ParsedFile:
    """Every record of a JSON Lines file, validated one by one. Never raises.

    Records are split on b"\\n" only: U+2028, \\x85, \\x0b and the other characters
    `str.splitlines` breaks on may legally sit inside a JSON string. Line numbers are
    physical lines from 1; blank lines are skipped and not counted.
    """
    parsed = ParsedFile()
    lines = data.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()  # the newline that ends the last record
    for number, line in enumerate(lines, start=1):
        raw = line[:-1] if line.endswith(b"\r") else line  # CRLF files
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        if not raw.strip():
            continue
        parsed.read += 1
        result = parse_event(raw)
        if isinstance(result, Rejection):
            parsed.rejects.append((number, _kept(raw), result.code, result.message))
        else:
            parsed.events.append((number, raw, result))
    return parsed


class _Skip(Exception):
    """A file that is not read this run; the message says why."""


# The short reasons shown for webhook files that are not read, by the shared scan's code.
_SKIP_REASONS = {
    "symlink": "symlink, not followed",
    "not_regular_file": "not a regular file",
    "unlistable_folder": "folder cannot be listed",
}


def _skip_reason(code: str, path: Path) -> str:
    if code == "symlink" and path.is_dir():
        return "symlinked folder, not followed"
    return _SKIP_REASONS.get(code, code)


def _is_events_file(path: Path) -> str | None:
    # The receiver writes `*.jsonl` (through a hidden temp name the shared rule ignores).
    return FILE_FORMAT if detect_format(path) == "jsonl" else None


def event_files(folder: Path) -> tuple[list[Path], list[tuple[str, str]]]:
    """The `*.jsonl` files under `folder` (sorted), and (path, why) for those skipped.

    The landing folders' scan (ingest/files.py): links are never followed, since the
    receiver writes plain files and a link could make the loader copy another file's
    content (or a FIFO's endless stream) into the warehouse; special files are not read.
    """
    scan = scan_landing_folder(folder, detect=_is_events_file)
    skipped = [(str(item.path), _skip_reason(item.code, item.path)) for item in scan.skipped]
    return [landing.path for landing in scan.files], skipped


def _read(path: Path, limit: int) -> tuple[str, int, bytes | None]:
    """(sha256, size, content), content None when over `limit` bytes; read once, so the
    hash recorded is the hash of exactly what was loaded."""
    try:
        handle = open_landing_file(path)  # no link followed, never blocks on a FIFO
    except NotRegularFileError as exc:
        raise _Skip(_skip_reason(exc.code, path)) from None
    except OSError as exc:
        raise _Skip(f"cannot open: {exc.strerror or exc}") from None
    digest = hashlib.sha256()
    with handle:
        try:
            content = handle.read(limit + 1)
            digest.update(content)
            size = len(content)
            if size <= limit:
                return digest.hexdigest(), size, content
            while block := handle.read(_READ_CHUNK):  # too large: hash the rest, keep none
                digest.update(block)
                size += len(block)
        except OSError as exc:
            raise _Skip(f"cannot read: {exc.strerror or exc}") from None
    return digest.hexdigest(), size, None


_INCOMING = "incoming_email_events"


def _events_table(events: list[tuple[int, bytes, EmailEvent]]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "sg_event_id": event.sg_event_id,
                "event": event.event,
                "email": event.email,
                "send_id": event.send_id,
                "sg_message_id": event.sg_message_id,
                "occurred_at": event.occurred_at,
                "reason": event.reason,
                "payload": event.payload,
                "line_number": number,
            }
            for number, _, event in events
        ],
        schema=_EVENTS_SCHEMA,
    )


def _registered(con: Connection, table: pa.Table) -> AbstractContextManager[None]:
    return registered(con, _INCOMING, table)


def _insert_events(con: Connection, path: Path, now: datetime) -> int:
    """Insert the registered events new to the warehouse (first occurrence of each
    sg_event_id); returns how many."""
    return con.execute(
        f"""
        insert into raw.email_events (sg_event_id, event, email, send_id, sg_message_id,
            occurred_at, reason, payload, source_file, ingested_at)
        select sg_event_id, event, email, send_id, sg_message_id, occurred_at,
               reason, cast(payload as json), $source, $now
        from (
            select *, row_number() over (partition by sg_event_id order by line_number) as nth
            from {_INCOMING}
            where sg_event_id not in (select sg_event_id from raw.email_events)
        ) incoming
        where nth = 1
        """,
        {"source": str(path), "now": now},
    ).fetchone()[0]


def _store(
    con: Connection,
    path: Path,
    sha256: str,
    size: int,
    parsed: ParsedFile,
    now: datetime,
) -> int:
    """One transaction per file: its rejections, its new events, and its record."""
    with _registered(con, _events_table(parsed.events)):
        con.execute("begin")
        try:
            serialize(con, "email_events")
            if parsed.rejects:
                con.executemany(
                    "insert into raw.email_events_rejected (source_file, line_number,"
                    " raw_record, error_code, error_message, rejected_at)"
                    " values (?, ?, ?, ?, ?, ?)",
                    [(str(path), *reject, now) for reject in parsed.rejects],
                )
            loaded = _insert_events(con, path, now) if parsed.events else 0
            duplicate = parsed.read - loaded - len(parsed.rejects)
            if duplicate < 0 or len(parsed.events) + len(parsed.rejects) != parsed.read:
                raise AssertionError(f"{path}: counts do not add up; refusing to commit")
            counts = [parsed.read, loaded, len(parsed.rejects), duplicate]
            con.execute(
                "insert into raw.ingested_files (path, sha256, file_format, size_bytes,"
                " rows_read, rows_loaded, rows_rejected, rows_duplicate, ingested_at)"
                " values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [str(path), sha256, FILE_FORMAT, size, *counts, now],
            )
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    return loaded


def _refused_events(
    con: Connection,
    path: Path,
    events: list[tuple[int, bytes, EmailEvent]],
    now: datetime,
) -> dict[int, str]:
    """Line number → the warehouse's error, for each event it refuses on its own. Each try
    is rolled back: this only finds the culprits after a whole-file insert failed."""
    refused: dict[int, str] = {}
    for item in events:
        try:
            table = _events_table([item])
        except _DATA_ERRORS as exc:
            refused[item[0]] = str(exc)
            continue
        with _registered(con, table):
            con.execute("begin")
            try:
                _insert_events(con, path, now)
            except _DATA_ERRORS as exc:
                refused[item[0]] = str(exc)
            finally:
                con.execute("rollback")
    return refused


def _without_refused(parsed: ParsedFile, refused: dict[int, str]) -> ParsedFile:
    rejects = list(parsed.rejects)
    events = []
    for number, raw, event in parsed.events:
        if number in refused:
            message = f"the warehouse refused this event: {refused[number]}"
            rejects.append((number, _kept(raw), "load_failed", message[:_MAX_MESSAGE_CHARS]))
        else:
            events.append((number, raw, event))
    rejects.sort(key=lambda reject: reject[0] or 0)
    return ParsedFile(read=parsed.read, events=events, rejects=rejects)


def _load_file(con: Connection, path: Path, report: EmailEventsReport) -> None:
    sha256, size, content = _read(path, MAX_FILE_BYTES)
    if con.execute("select 1 from raw.ingested_files where sha256 = ?", [sha256]).fetchone():
        return  # this content was loaded before (SendGrid retried the same delivery)
    now = wall_clock()
    if content is None:
        parsed = ParsedFile(read=1)
        message = f"file is {size} bytes, over the {MAX_FILE_BYTES} byte limit; not read"
        parsed.rejects.append((None, None, "file_too_large", message))
    else:
        parsed = parse_events_file(content)
    try:
        loaded = _store(con, path, sha256, size, parsed, now)
    except _DATA_ERRORS:
        # Validation should make this unreachable; if the warehouse still refuses some
        # value, find the events it refuses and reject just those, so one unforeseen event
        # cannot block every later send.
        refused = _refused_events(con, path, parsed.events, now)
        if not refused:
            raise  # not about any one event: let the run fail and retry
        log.error("%s: the warehouse refused %d event(s); rejected them", path, len(refused))
        parsed = _without_refused(parsed, refused)
        loaded = _store(con, path, sha256, size, parsed, now)
    report.files += 1
    report.loaded += loaded
    report.duplicate += len(parsed.events) - loaded
    report.rejections.update(code for _, _, code, _ in parsed.rejects)
    if parsed.rejects:
        log.warning("%s: %d event(s) rejected", path, len(parsed.rejects))


def load_email_events(con: Connection, folder: Path) -> EmailEventsReport:
    """Load every webhook file not ingested before (by content hash), one transaction each.

    Raises only for faults of the warehouse itself (lock, disk), never for file content.
    """
    report = EmailEventsReport()
    files, skipped = event_files(folder)
    report.skipped.extend(skipped)
    for path in files:
        try:
            _load_file(con, path, report)
        except _Skip as skip:
            report.skipped.append((str(path), str(skip)))
    for path, why in report.skipped:
        log.warning("email events: skipped %s: %s", path, why)
    return report
