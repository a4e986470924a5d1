"""One event record, its columns, and the fast helpers that render its fields.

A record is a plain tuple in `COLUMNS` order (tuples are the cheapest thing to build ten
million times). Field values are already final strings, except `userId`, which is an
`int` for the few legacy numeric ids: JSONL writes it as a JSON number (as Segment
libraries do), the tabular formats as its decimal text, which is what Segment coerces it
to, so the formats stay in parity.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from pipelines.lib.segment_spec import SEGMENT_COLUMNS

COLUMNS = SEGMENT_COLUMNS
# messageId, type, event, name, userId, anonymousId, timestamp, receivedAt,
# properties (JSON text), traits (JSON text), context (JSON text)
Record = tuple[
    str, str, str | None, str | None, str | int | None, str | None, str, str,
    str | None, str | None, str,
]  # fmt: skip

MS_PER_SECOND = 1_000
MS_PER_MINUTE = 60 * MS_PER_SECOND
MS_PER_HOUR = 60 * MS_PER_MINUTE
MS_PER_DAY = 24 * MS_PER_HOUR
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def dumps(value: object) -> str:
    """Compact JSON, UTF-8 kept as is (Segment payloads are compact and not ASCII-escaped)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def to_ms(moment: datetime) -> int:
    """Milliseconds since the epoch for an aware datetime."""
    return (moment - _EPOCH) // timedelta(milliseconds=1)


class IsoFormatter:
    """Formats epoch milliseconds as `2026-10-01T09:15:02.123Z`.

    datetime.strftime costs microseconds per call, and every record needs two stamps.
    Here the "YYYY-MM-DDTHH:MM:" prefix is cached per minute (receivedAt nearly always
    shares its timestamp's minute) and the "SS.mmmZ" suffix comes from a table.
    """

    _SUFFIXES: tuple[str, ...] = ()
    _MAX_CACHED_MINUTES = 200_000  # about 140 days of minutes; the cache restarts beyond

    def __init__(self) -> None:
        if not IsoFormatter._SUFFIXES:
            IsoFormatter._SUFFIXES = tuple(
                f"{ms // 1000:02d}.{ms % 1000:03d}Z" for ms in range(MS_PER_MINUTE)
            )
        self._suffixes = IsoFormatter._SUFFIXES
        self._minute_prefix: dict[int, str] = {}

    def __call__(self, ms: int) -> str:
        minute, rem = divmod(ms, MS_PER_MINUTE)
        prefix = self._minute_prefix.get(minute)
        if prefix is None:
            if len(self._minute_prefix) >= self._MAX_CACHED_MINUTES:
                self._minute_prefix.clear()
            prefix = (_EPOCH + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:")
            self._minute_prefix[minute] = prefix
        return prefix + self._suffixes[rem]


# Clears the version nibble and the two variant bits; then sets version 4, RFC 4122 variant.
_UUID_KEEP = 0xFFFFFFFF_FFFF_0FFF_3FFF_FFFFFFFFFFFF
_UUID_SET = 0x00000000_0000_4000_8000_000000000000


def uuid4_from(rng: random.Random) -> str:
    """A version-4 UUID drawn from `rng`, so message ids are reproducible."""
    h = f"{rng.getrandbits(128) & _UUID_KEEP | _UUID_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def jsonl_line(record: Record) -> str:
    """The Segment JSON object for a record, newline-terminated.

    Assembled by hand instead of json.dumps(dict): every embedded value is either a
    JSON text already (properties, traits, context) or an id/name/timestamp from a
    controlled ASCII alphabet without quotes or backslashes, so no escaping is needed.
    """
    mid, typ, event, name, uid, aid, ts, received, props, traits, ctx = record
    parts = ['{"type":"', typ, '","messageId":"', mid, '"']
    if uid is not None:
        parts.append(f',"userId":{uid}' if type(uid) is int else f',"userId":"{uid}"')
    if aid is not None:
        parts.append(f',"anonymousId":"{aid}"')
    if event is not None:
        parts.append(f',"event":"{event}"')
    if name is not None:
        parts.append(f',"name":"{name}"')
    if props is not None:
        parts.append(f',"properties":{props}')
    if traits is not None:
        parts.append(f',"traits":{traits}')
    parts.append(f',"context":{ctx},"timestamp":"{ts}","receivedAt":"{received}"}}\n')
    return "".join(parts)


def tabular_row(record: Record) -> Record:
    """The record with a numeric userId as text, for the all-string parquet/csv columns."""
    uid = record[4]
    if type(uid) is int:
        return (*record[:4], str(uid), *record[5:])  # type: ignore[return-value]
    return record
