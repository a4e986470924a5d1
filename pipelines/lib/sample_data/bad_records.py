"""Malformed records, one fault each, to exercise ingestion's rejection path.

Ingestion checks a record in `BAD_RECORD_CODES` order and reports the first failure, so
each malformed record here is a valid event except for exactly one fault, the one its
code names. Each carries a fresh messageId (or, when it has none, unique content), so no
two are duplicates of each other or of a valid record.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pipelines.lib.ingest.readers import MAX_LINE_BYTES
from pipelines.lib.ingest.validate import ROW_CODES
from pipelines.lib.sample_data import vocab
from pipelines.lib.sample_data.records import (
    MS_PER_DAY,
    MS_PER_MINUTE,
    IsoFormatter,
    dumps,
    uuid4_from,
)

# The validator's row codes, in its order, but for CSV's own wrong-width rows: the
# generator writes well-formed CSV and breaks a record in one field at a time.
BAD_RECORD_CODES: tuple[str, ...] = tuple(c for c in ROW_CODES if c != "malformed_csv_row")
# A tabular column holds text, so it cannot be broken JSON or a non-object; parquet
# strings are UTF-8 by construction, and parquet has no lines (a huge row is simply
# record_too_large).
_NOT_TABULAR = ("invalid_json", "not_an_object")
FORMAT_CODES: dict[str, tuple[str, ...]] = {
    "jsonl": BAD_RECORD_CODES,
    "jsonl.gz": BAD_RECORD_CODES,
    "csv": tuple(c for c in BAD_RECORD_CODES if c not in _NOT_TABULAR),
    "parquet": tuple(
        c for c in BAD_RECORD_CODES if c not in (*_NOT_TABULAR, "not_utf8", "line_too_long")
    ),
}

MAX_RECORD_BYTES = 32 * 1024
INVALID_UTF8 = b"\xff\xfe"
# Stands in for the invalid bytes until the record is encoded; never occurs in valid data.
NOT_UTF8_MARKER = "@@bis-not-utf8@@"

_INVALID_TIMESTAMPS = (
    "yesterday",
    "2026-13-45T00:00:00Z",
    "2026-02-30T10:00:00.000Z",
    "not a date",
    "12/24/2026 10:00",
)
_OUT_OF_RANGE_TIMESTAMPS = (
    "1970-01-01T00:00:00.000Z",
    "1999-12-31T23:59:59.000Z",
    "2099-01-01T00:00:00.000Z",
)
# UTC offsets no place uses (the limit is ±18:00); the time itself is fine.
_BAD_OFFSETS = ("+99:00", "-18:30", "+2400", "+19")
# JSON has no NaN or Infinity; Python's json writes them anyway (and DuckDB reads them).
_NON_FINITE = (float("nan"), float("inf"), float("-inf"))
# An identity with a control character: a bell, an ANSI colour escape, DEL, a C1 control
# and a line separator inside it (blanks around an id are trimmed, not refused).
_CONTROL_IDS = ("{uid}\x07", "\x1b[31m{uid}", "{uid}\x7f", "{uid}\x85x", "{uid}\u2028{uid}")


@dataclass(frozen=True)
class BadRecord:
    """A malformed record: a full JSONL line (bytes) or a tabular row (COLUMNS order)."""

    code: str
    line: bytes | None = None
    row: tuple[str | None, ...] | None = None


class BadRecordFactory:
    """Builds malformed records for one output format from its own RNG stream."""

    def __init__(self, *, seed: int, end_ms: int, days: int, fmt: str) -> None:
        self.fmt = fmt
        self.codes = FORMAT_CODES[fmt]
        self.end_ms = end_ms
        self.days = days
        self.iso = IsoFormatter()
        # Separate from the users' RNGs, so valid events are the same for any bad_lines.
        self.rng = random.Random(f"bis-sample:{seed}:bad-records")

    def plan(self, users: int, count: int) -> dict[int, list[tuple[float, str]]]:
        """Where the malformed records go: user index → [(position in batch 0..1, code)].

        Codes are assigned in file order, cycling, so each code occurs once K reaches the
        number of codes the format can express.
        """
        rng = self.rng
        spots = sorted((rng.randrange(users), rng.random()) for _ in range(count))
        placed: dict[int, list[tuple[float, str]]] = {}
        for j, (user, fraction) in enumerate(spots):
            placed.setdefault(user, []).append((fraction, self.codes[j % len(self.codes)]))
        return placed

    def make(self, code: str, user_id: str) -> BadRecord:
        if self.fmt in ("jsonl", "jsonl.gz"):
            return BadRecord(code=code, line=self._line(code, user_id))
        return BadRecord(code=code, row=self._row(code, user_id))

    # -- a valid record to break ---------------------------------------------------------

    def _base(self, user_id: str) -> dict[str, object]:
        rng = self.rng
        t = self.end_ms - MS_PER_MINUTE - int(rng.random() * (self.days * MS_PER_DAY - MS_PER_DAY))
        return {
            "type": "track",
            "messageId": uuid4_from(rng),
            "userId": user_id,
            "event": rng.choice(vocab.ACTIVITY_EVENTS)[0],
            "properties": {"dashboard_id": f"dsh_{rng.randrange(1, 40)}"},
            "context": {"library": vocab.BROWSER_LIBRARY},
            "timestamp": self.iso(t),
            "receivedAt": self.iso(t + rng.randint(20, 900)),
        }

    def _huge_property(self, size: int = MAX_RECORD_BYTES + 4000) -> str:
        # A pasted log: realistic for an oversized payload, and well over the limit.
        entry = f"GET /api/v1/dashboards/{self.rng.randrange(10**6)} 200 12ms; "
        return (entry * (size // len(entry) + 1))[:size]

    def _line_too_long(self) -> dict[str, str]:
        # A whole log file pasted in: over the line limit, so never read whole.
        return {"debug_log": self._huge_property(MAX_LINE_BYTES + 8000)}

    def _non_finite(self, rec: dict[str, object]) -> None:
        value = self.rng.choice(_NON_FINITE)
        variant = self.rng.randrange(3)
        if variant == 0:
            rec["properties"] = {"dashboard_id": "dsh_1", "conversion_rate": value}
        elif variant == 1:
            rec["properties"] = {"scores": [0.5, value]}
        else:
            rec["context"] = {"library": vocab.BROWSER_LIBRARY, "screen": {"density": value}}

    def _nul_property(self) -> dict[str, object]:
        """A NUL in a property value: a C string's terminator copied by a buggy SDK."""
        return {"plan": self.rng.choice(("pro\x00", "team\x00\x00", "\x00"))}

    def _control_id(self, user_id: str) -> str:
        return self.rng.choice(_CONTROL_IDS).format(uid=user_id)

    def _bad_time(self, rec: dict[str, object]) -> None:
        """Break timestamp or receivedAt: unparseable, or with an impossible UTC offset."""
        field = "timestamp" if self.rng.random() < 0.6 else "receivedAt"
        if self.rng.random() < 0.5:
            rec[field] = self.rng.choice(_INVALID_TIMESTAMPS)
        else:
            rec[field] = str(rec[field])[:-1] + self.rng.choice(_BAD_OFFSETS)

    # -- JSONL ---------------------------------------------------------------------------

    def _line(self, code: str, user_id: str) -> bytes:
        rng = self.rng
        rec = self._base(user_id)
        if code == "not_utf8":
            rec["properties"] = {"note": f"caf{NOT_UTF8_MARKER} au lait"}
        elif code == "line_too_long":
            rec["properties"] = self._line_too_long()
        elif code == "record_too_large":
            rec["properties"] = {"debug_log": self._huge_property()}
        elif code == "invalid_json":
            return self._garbled(rec)
        elif code == "not_an_object":
            return self._not_an_object(rec)
        elif code == "unknown_type":
            variant = rng.randrange(4)
            if variant == 0:
                del rec["type"]
            else:
                rec["type"] = ("alias", "Track ", "screen")[variant - 1]
                if rec["type"] == "alias":
                    rec["previousId"] = uuid4_from(rng)
        elif code == "wrong_field_type":
            variant = rng.randrange(5)
            if variant == 0:
                rec["properties"] = ["beta", "dark-mode"]
            elif variant == 1:
                rec["properties"] = "plan=pro"
            elif variant == 2:
                # An object where an id belongs; the anonymousId keeps identity intact.
                rec["userId"] = {"id": user_id}
                rec["anonymousId"] = uuid4_from(rng)
            elif variant == 3:
                rec["event"] = rng.randint(1, 999)
            else:
                rec["context"] = "analytics.js"
        elif code == "non_finite_number":
            self._non_finite(rec)
        elif code == "invalid_identity":
            rec["userId"] = self._control_id(user_id)
        elif code == "nul_character":
            rec["properties"] = self._nul_property()
        elif code == "missing_identity":
            variant = rng.randrange(4)
            if variant == 0:
                del rec["userId"]
            elif variant == 1:
                rec["userId"] = None
            elif variant == 2:
                rec["userId"] = ""
                rec["anonymousId"] = None
            else:
                rec["userId"] = " \t\u00a0 "  # blanks only: nothing once trimmed
        elif code == "missing_event_name":
            variant = rng.randrange(3)
            if variant == 0:
                del rec["event"]
            else:
                rec["event"] = (None, "")[variant - 1]
        elif code == "missing_timestamp":
            if rng.random() < 0.5:
                del rec["timestamp"]
            else:
                rec["timestamp"] = None
        elif code == "invalid_timestamp":
            self._bad_time(rec)
        elif code == "timestamp_out_of_range":
            rec["timestamp" if rng.random() < 0.7 else "receivedAt"] = self._out_of_range()
        else:  # pragma: no cover - the codes are a closed set
            raise ValueError(f"unknown bad record code {code!r}")
        text = dumps(rec) + "\n"
        data = text.encode("utf-8")
        if code == "not_utf8":
            data = data.replace(NOT_UTF8_MARKER.encode(), INVALID_UTF8)
        return data

    def _garbled(self, rec: dict[str, object]) -> bytes:
        text = dumps(rec)
        variant = self.rng.randrange(3)
        if variant == 0:
            # Cut off mid-record, as a crashed writer leaves it (a prefix of an object is
            # never valid JSON); the messageId near the start keeps the line unique.
            cut = int(len(text) * self.rng.uniform(0.5, 0.9))
            return (text[:cut] + "\n").encode()
        if variant == 1:
            return (text.replace('","event":', '" "event":', 1) + "\n").encode()  # no comma
        return (text.replace('"type":', "type:", 1) + "\n").encode()  # unquoted key

    def _not_an_object(self, rec: dict[str, object]) -> bytes:
        variant = self.rng.randrange(3)
        if variant == 0:
            return (dumps([rec]) + "\n").encode()  # a batch array instead of one event
        if variant == 1:
            return (dumps(f"track {rec['messageId']}") + "\n").encode()
        return f"{self.rng.randrange(10**12, 10**13)}\n".encode()

    def _out_of_range(self) -> str:
        if self.rng.random() < 0.25:
            # Days after the clock: a device with its date set wrong.
            return self.iso(self.end_ms + self.rng.randint(2, 30) * MS_PER_DAY)
        return self.rng.choice(_OUT_OF_RANGE_TIMESTAMPS)

    # -- tabular (parquet, csv) ------------------------------------------------------------

    def _row(self, code: str, user_id: str) -> tuple[str | None, ...]:
        rng = self.rng
        rec = self._base(user_id)
        props: str | None = dumps(rec["properties"])
        ctx: str | None = dumps(rec["context"])
        typ: str | None = "track"
        event: str | None = str(rec["event"])
        uid: str | None = user_id
        ts: str | None = str(rec["timestamp"])
        received: str | None = str(rec["receivedAt"])
        if code == "not_utf8":
            # The csv writer swaps the marker for invalid bytes after encoding the batch.
            props = dumps({"note": f"caf{NOT_UTF8_MARKER} au lait"})
        elif code == "line_too_long":
            props = dumps(self._line_too_long())
        elif code == "record_too_large":
            props = dumps({"debug_log": self._huge_property()})
        elif code == "unknown_type":
            typ = rng.choice((None, "alias", "Track ", "screen"))
        elif code == "wrong_field_type":
            variant = rng.randrange(4)
            if variant < 3:
                props = ('["beta","dark-mode"]', '"plan=pro"', "42")[variant]
            else:
                ctx = '"analytics.js"'
        elif code == "non_finite_number":
            self._non_finite(rec)
            props, ctx = dumps(rec["properties"]), dumps(rec["context"])
        elif code == "invalid_identity":
            uid = self._control_id(user_id)
        elif code == "nul_character":
            props = dumps(self._nul_property())
        elif code == "missing_identity":
            uid = rng.choice((None, "", "   "))
        elif code == "missing_event_name":
            event = rng.choice((None, ""))
        elif code == "missing_timestamp":
            ts = None
        elif code == "invalid_timestamp":
            self._bad_time(rec)
            ts, received = str(rec["timestamp"]), str(rec["receivedAt"])
        elif code == "timestamp_out_of_range":
            if rng.random() < 0.7:
                ts = self._out_of_range()
            else:
                received = self._out_of_range()
        else:
            raise ValueError(f"bad record code {code!r} cannot be written as a {self.fmt} row")
        return (
            str(rec["messageId"]),
            typ,
            event,
            None,
            uid,
            None,
            ts,
            received,
            props,
            None,
            ctx,
        )
