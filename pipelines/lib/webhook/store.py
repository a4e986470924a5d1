"""Durable landing of verified webhook events as JSON Lines.

The receiver acknowledges SendGrid only after `append_events` returns, and SendGrid retries
anything not acknowledged, so the order here is the whole guarantee: write a temp file,
flush + fsync it, atomically rename it into place, fsync the directory. A crash before the
rename leaves only a temp file (leading dot and `.tmp` suffix, both ignored by ingestion)
and no acknowledgement; a crash after the fsyncs loses nothing that was acknowledged.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pipelines.lib.atomic_files import fsync_path
from pipelines.lib.email_events.validate import MAX_JSON_DEPTH, JsonRejected, loads_strict

# Called with the temp file's path after it is written and fsynced, before the rename.
# Tests use it to kill the process at the worst moment.
BeforeCommitHook = Callable[[Path], None]

TEMP_SUFFIX = ".tmp"
UNSIGNED_MARK = ".unsigned"  # dev-only posts accepted without a key: `<name>.unsigned.jsonl`


class MalformedPayload(ValueError):
    """The body is not a JSON array (or nests too deep to be SendGrid's)."""


# Only used to find each element's span after `loads_strict` accepted the whole body.
_DECODER = json.JSONDecoder()


def split_events(body: bytes) -> list[str]:
    """The elements of a JSON array body, each as its exact source text.

    Ingestion dedupes on `sg_event_id` and keeps the raw record, so we keep each element's
    text as SendGrid sent it instead of re-serializing. The only change: a CR/LF between
    tokens (pretty-printed bodies) becomes a space so one event stays one line; raw CR/LF
    cannot occur inside JSON strings, so this never alters a value.

    Only the body as a whole is judged here: not UTF-8, not JSON (NaN, trailing data),
    nested deeper than MAX_JSON_DEPTH, or not an array raise `MalformedPayload` (400).
    The elements are not: SendGrid retries a refused batch for 24 h and then drops it, so
    one odd element would cost every good event beside it. An element that is not a
    usable event is stored like the rest and rejected, alone and kept, by the loader.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedPayload("body is not UTF-8") from exc
    # Validate the whole document first, so trailing garbage or duplicated arrays fail.
    try:
        document = loads_strict(text, max_depth=MAX_JSON_DEPTH)
    except JsonRejected as exc:
        raise MalformedPayload(f"body is not acceptable JSON: {exc.message}") from exc
    if not isinstance(document, list):
        raise MalformedPayload("body is not a JSON array")

    # Second pass for the exact spans: raw_decode reports where each element ends.
    events: list[str] = []
    position = _skip_ws(text, 0) + 1  # past '['
    for _ in document:
        position = _skip_ws(text, position)
        _, end = _DECODER.raw_decode(text, position)
        events.append(text[position:end].replace("\r", " ").replace("\n", " "))
        position = _skip_ws(text, end) + 1  # past ',' or the closing ']'
    return events


def _skip_ws(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\r\n":
        position += 1
    return position


def append_events(
    landing_dir: Path,
    events: list[str],
    *,
    received_at: float,
    unsigned: bool = False,
    before_commit: BeforeCommitHook | None = None,
) -> Path:
    """Land `events` (one JSON object text each) durably; return the final file's path.

    Files go to `landing_dir/<YYYYMMDD>/<YYYYmmddTHHMMSSffffff>Z-<uuid>.jsonl`; the uuid
    keeps two deliveries of the same body in the same microsecond apart, because duplicate
    deliveries must both be kept (dedupe is ingestion's job, by `sg_event_id`).
    """
    moment = datetime.fromtimestamp(received_at, UTC)
    day_dir = landing_dir / moment.strftime("%Y%m%d")
    _ensure_dir_durable(day_dir)

    name = f"{moment.strftime('%Y%m%dT%H%M%S%f')}Z-{uuid.uuid4().hex}"
    final = day_dir / f"{name}{UNSIGNED_MARK if unsigned else ''}.jsonl"
    temp = day_dir / f".{final.name}{TEMP_SUFFIX}"
    data = "".join(f"{event}\n" for event in events).encode("utf-8")

    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            view = memoryview(data)
            while view:  # os.write may write less than asked
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if before_commit is not None:
            before_commit(temp)
        os.replace(temp, final)
    except BaseException:
        # A failed write is not acknowledged; leave no half file. (A crash cannot clean up,
        # which is why temp names are ones ingestion ignores.)
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    fsync_path(day_dir)  # the rename is durable only once the directory entry is
    return final


def _ensure_dir_durable(directory: Path) -> None:
    """Create the directory (and parents) and fsync each parent whose entries changed."""
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    directory.mkdir(parents=True, exist_ok=True)
    for created in reversed(missing):
        fsync_path(created.parent)
