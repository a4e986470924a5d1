"""Load the webhook receiver's JSON Lines files into raw.email_events.

Files are small (one webhook delivery each), so events are parsed in Python; what cannot
be used is kept in raw.events_rejected with its reason, and every file is recorded in
raw.ingested_files with rows_read = loaded + rejected + duplicate, like product events.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.lib.ingest.files import file_sha256
from pipelines.lib.ingest.validate import MAX_KEPT_RAW_CHARS


@dataclass
class EmailEventsReport:
    files: int = 0
    loaded: int = 0
    duplicate: int = 0
    rejections: Counter = field(default_factory=Counter)

    @property
    def rejected(self) -> int:
        return sum(self.rejections.values())


def _parse(line: str) -> tuple[dict | None, str | None, str | None]:
    """(event, error_code, error_message) for one line."""
    try:
        event = json.loads(line)
    except json.JSONDecodeError as exc:
        return None, "invalid_json", f"not valid JSON: {exc.msg}"
    if not isinstance(event, dict):
        return None, "not_an_object", "an event must be a JSON object"
    for name in ("sg_event_id", "event"):
        if not isinstance(event.get(name), str) or not event[name]:
            return None, f"missing_{name}", f"event has no {name}"
    if not isinstance(event.get("timestamp"), int | float) or isinstance(event["timestamp"], bool):
        return None, "invalid_timestamp", "timestamp must be epoch seconds"
    return event, None, None


def _event_files(folder: Path) -> list[Path]:
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob("*.jsonl") if p.is_file() and not p.name.startswith("."))


def load_email_events(con: duckdb.DuckDBPyConnection, folder: Path) -> EmailEventsReport:
    """Load every webhook file not ingested before (by content hash), one transaction each."""
    report = EmailEventsReport()
    for path in _event_files(folder):
        sha256 = file_sha256(path)
        if con.execute("select 1 from raw.ingested_files where sha256 = ?", [sha256]).fetchone():
            continue
        now = datetime.now(UTC)
        rows, rejects = [], []
        lines = path.read_text(encoding="utf-8", errors="backslashreplace").splitlines()
        numbered = [(n, line) for n, line in enumerate(lines, start=1) if line.strip()]
        for number, line in numbered:
            event, code, message = _parse(line)
            if event is None:
                rejects.append((str(path), number, line[:MAX_KEPT_RAW_CHARS], code, message, now))
                continue
            custom = event.get("custom_args") if isinstance(event.get("custom_args"), dict) else {}
            rows.append(
                {
                    "sg_event_id": event["sg_event_id"],
                    "event": event["event"],
                    "email": event.get("email"),
                    "send_id": event.get("send_id") or custom.get("send_id"),
                    "sg_message_id": event.get("sg_message_id"),
                    "occurred_at": datetime.fromtimestamp(event["timestamp"], UTC),
                    "reason": event.get("reason") or event.get("response"),
                    "payload": json.dumps(event),
                    "line_number": number,
                }
            )
        con.execute("begin")
        try:
            if rejects:
                con.executemany(
                    "insert into raw.events_rejected values (?, ?, ?, ?, ?, ?)", rejects
                )
            loaded = 0
            if rows:
                con.register("incoming", pa.Table.from_pylist(rows))
                loaded = con.execute(
                    """
                    insert into raw.email_events
                    select sg_event_id, event, email, send_id, sg_message_id, occurred_at,
                           reason, payload::json, $source, $now
                    from incoming
                    where sg_event_id not in (select sg_event_id from raw.email_events)
                    qualify row_number() over (partition by sg_event_id order by line_number) = 1
                    """,
                    {"source": str(path), "now": now},
                ).fetchone()[0]
                con.unregister("incoming")
            read = len(numbered)
            con.execute(
                "insert into raw.ingested_files values (?, ?, 'email_events', ?, ?, ?, ?, ?, ?)",
                [
                    str(path),
                    sha256,
                    path.stat().st_size,
                    read,
                    loaded,
                    len(rejects),
                    read - loaded - len(rejects),
                    now,
                ],
            )
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
        report.files += 1
        report.loaded += loaded
        report.duplicate += len(rows) - loaded
        report.rejections.update(code for *_, code, _, _ in rejects)
    return report
