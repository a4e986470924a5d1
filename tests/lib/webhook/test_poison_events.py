"""Poison webhook events: one bad event is one kept rejection; it never halts sending.

Every case puts one malformed event between good ones (an unsubscribe, a bounce, a spam
report) in a landed file and checks the whole contract: the load does not raise, the bad
event is in raw.email_events_rejected with its reason and raw text, the good ones load and
become suppressions, the file's counts add up, and the next run (what `bis send` does
first) neither fails nor redoes anything.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from pipelines.lib.email_events import apply_email_events, load_email_events
from pipelines.lib.email_events import load as load_module
from pipelines.lib.email_events.validate import EmailEvent, parse_event
from pipelines.lib.ingest.checks import unbalanced_files
from pipelines.lib.settings import load_settings
from pipelines.lib.steps import build_run_context, email_events_step, warehouse_opener
from pipelines.lib.warehouse import apply_migrations, open_warehouse
from pipelines.lib.webhook import EVENTS_PATH, create_app
from tests.lib.webhook.webhook_helpers import SIGNER, call

STAMP = 1_764_000_000  # 2025-11-24T16:00:00Z


def good_events(prefix: str = "good") -> list[dict]:
    return [
        {"sg_event_id": f"{prefix}-u", "event": "unsubscribe", "email": f"{prefix}-u@x.com"},
        {"sg_event_id": f"{prefix}-b", "event": "bounce", "email": f"{prefix}-b@x.com"},
        {"sg_event_id": f"{prefix}-s", "event": "spamreport", "email": f"{prefix}-s@x.com"},
    ]


def line(event: dict) -> bytes:
    return json.dumps({"timestamp": STAMP, **event}).encode()


def bad(**fields: object) -> bytes:
    """A bounce that would suppress `bad@x.com` if it were loaded, with `fields` changed."""
    event: dict = {"sg_event_id": "bad", "event": "bounce", "email": "bad@x.com"}
    event["timestamp"] = STAMP
    event.update(fields)
    return json.dumps(event).encode()


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# (raw line, expected error code): each is one class member an attacker or a careless
# operator would try; the message must name what is wrong.
POISON = {
    # timestamps: too large for datetime, not a number, out of any sane range
    "timestamp 1e20": (bad(timestamp=1e20), "timestamp_out_of_range"),
    "timestamp 10**30 int": (bad(timestamp=10**30), "timestamp_out_of_range"),
    "timestamp negative": (bad(timestamp=-62_135_600_000), "timestamp_out_of_range"),
    "timestamp before 2000": (bad(timestamp=0), "timestamp_out_of_range"),
    "timestamp 1e400": (
        bad(timestamp=0).replace(b'"timestamp": 0', b'"timestamp": 1e400'),
        "invalid_json",
    ),
    "timestamp true": (bad(timestamp=True), "invalid_timestamp"),
    "timestamp string": (bad(timestamp=str(STAMP)), "invalid_timestamp"),
    "timestamp null": (bad(timestamp=None), "invalid_timestamp"),
    "timestamp object": (bad(timestamp={"s": STAMP}), "invalid_timestamp"),
    # fields of the wrong type
    "email object": (bad(email={"a": 1}), "wrong_field_type"),
    "email number": (bad(email=5), "wrong_field_type"),
    "email list": (bad(email=["a@x.com"]), "wrong_field_type"),
    "sg_event_id number": (bad(sg_event_id=12), "wrong_field_type"),
    "sg_event_id empty": (bad(sg_event_id="  "), "missing_sg_event_id"),
    "event list": (bad(event=["bounce"]), "wrong_field_type"),
    "event missing": (bad(event=None), "missing_event"),
    "send_id number": (bad(send_id=7), "wrong_field_type"),
    "custom_args string": (bad(custom_args="send_id=1"), "wrong_field_type"),
    "custom_args.send_id object": (bad(custom_args={"send_id": {}}), "wrong_field_type"),
    "reason array": (bad(reason=["550"]), "wrong_field_type"),
    "response bool": (bad(response=False), "wrong_field_type"),
    "sg_message_id float": (bad(sg_message_id=1.5), "wrong_field_type"),
    # JSON that Python reads but the warehouse could not store
    "lone surrogate in email": (bad(email="\ud800@x.com"), "invalid_json"),
    "lone surrogate in a key": (bad(**{"k\udfff": 1}), "invalid_json"),
    "NaN": (bad(n=0).replace(b'"n": 0', b'"n": NaN'), "invalid_json"),
    "-Infinity": (bad(n=0).replace(b'"n": 0', b'"n": -Infinity'), "invalid_json"),
    "5000-digit integer": (bad(n=0).replace(b'"n": 0', b'"n": ' + b"9" * 5000), "invalid_json"),
    # nesting: past Python's recursion limit, and just past ours
    "100k nested arrays": (nested(100_000), "record_too_large"),
    "20k nested arrays": (nested(20_000), "too_deeply_nested"),
    "20k nested in a field": (
        bad(n=0).replace(b'"n": 0', b'"n": ' + nested(20_000)),
        "too_deeply_nested",
    ),
    "65 nested objects": (b'{"a":' * 65 + b"1" + b"}" * 65, "too_deeply_nested"),
    "65 nested in a field": (
        bad(n=0).replace(b'"n": 0', b'"n": ' + nested(64)),
        "too_deeply_nested",
    ),
    # not an event at all
    "not UTF-8": (bad().replace(b"bad@x.com", b"caf\xe9@x.com"), "not_utf8"),
    "NUL byte": (b'{"sg_event_id": "x\x00"}', "invalid_json"),
    "truncated": (bad()[:30], "invalid_json"),
    "array": (b"[1, 2]", "not_an_object"),
    "string": (b'"bounce"', "not_an_object"),
    "null": (b"null", "not_an_object"),
    "too large": (bad(reason="x" * 70_000), "record_too_large"),
}


def write(folder: Path, name: str, lines: list[bytes], *, end: bytes = b"\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(end.join(lines) + end)
    return path


def rejected_rows(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        "select source_file, line_number, raw_record, error_code, error_message"
        " from raw.email_events_rejected order by source_file, line_number"
    ).fetchall()


def suppressed(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(con.execute("select email, reason from messaging.suppressions").fetchall())


def file_counts(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute(
        "select rows_read, rows_loaded, rows_rejected, rows_duplicate from raw.ingested_files"
        " where file_format = 'email_events' order by path"
    ).fetchall()


GOOD_SUPPRESSIONS = {
    "good-u@x.com": "unsubscribe",
    "good-b@x.com": "bounce",
    "good-s@x.com": "spamreport",
}


@pytest.mark.parametrize(("poison", "code"), POISON.values(), ids=POISON.keys())
def test_one_poison_event_is_rejected_and_kept_and_the_rest_loads(
    warehouse: duckdb.DuckDBPyConnection, data_dir: Path, poison: bytes, code: str, engine: str
) -> None:
    folder = data_dir / "landing" / "email_events"
    first, second, third = (line(e) for e in good_events())
    path = write(folder, "batch.jsonl", [first, second, poison, third])

    report = load_email_events(warehouse, folder)
    applied = apply_email_events(warehouse)

    assert (report.files, report.loaded, report.duplicate) == (1, 3, 0)
    assert dict(report.rejections) == {code: 1}
    [(source, number, raw, error_code, message)] = rejected_rows(warehouse)
    assert (source, number, error_code) == (str(path), 3, code)
    assert message and len(message) < 300
    kept = poison[:65536].decode("utf-8", errors="backslashreplace")[:65536]
    if engine == "postgres":  # its text cannot hold U+0000: kept as the escape \x00
        kept = kept.replace("\x00", "\\x00")
    assert raw == kept  # as received; bytes that are not UTF-8 as \xNN
    assert file_counts(warehouse) == [(4, 3, 1, 0)]
    assert unbalanced_files(warehouse) == []
    assert applied.suppressions_added == 3
    assert suppressed(warehouse) == GOOD_SUPPRESSIONS

    again = load_email_events(warehouse, folder)  # the next `bis send`
    assert (again.files, again.loaded, again.rejected) == (0, 0, 0)
    assert len(rejected_rows(warehouse)) == 1


@pytest.mark.parametrize(
    ("poison", "field"),
    [
        (bad(email={"a": 1}), "email"),
        (bad(send_id=7), "send_id"),
        (bad(custom_args="x"), "custom_args"),
        (bad(custom_args={"send_id": 5}), "custom_args.send_id"),
        (bad(timestamp=True), "timestamp"),
        (bad(timestamp=1e20), "timestamp"),
        (bad(n=0).replace(b'"n": 0', b'"n": 1e400'), "n"),
        (bad(nested={"list": [1, "\udc80"]}), "nested.list[1]"),
    ],
)
def test_the_message_names_the_field(poison: bytes, field: str) -> None:
    result = parse_event(poison)
    assert not isinstance(result, EmailEvent)
    assert result.message.startswith(field) or f" {field} " in f" {result.message} "


# Characters `str.splitlines` breaks on. Inside a JSON string, \x85, U+2028 and U+2029 are
# legal as they are; the C0 ones are control characters JSON requires escaped.
LEGAL_IN_STRINGS = ["\x85", "\u2028", "\u2029"]
CONTROL = ["\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"]


@pytest.mark.parametrize("char", LEGAL_IN_STRINGS, ids=lambda c: f"U+{ord(c):04X}")
def test_line_breaks_other_than_newline_inside_a_value_keep_one_event(
    warehouse: duckdb.DuckDBPyConnection, data_dir: Path, char: str
) -> None:
    folder = data_dir / "landing" / "email_events"
    reason = f"550 mailbox{char}unavailable"
    lines = [line(e) for e in good_events()]
    odd = json.dumps(
        {
            "sg_event_id": "odd",
            "event": "bounce",
            "email": "odd@x.com",
            "timestamp": STAMP,
            "reason": reason,
        },
        ensure_ascii=False,
    ).encode()
    assert char.encode() in odd  # raw in the file, not escaped
    write(folder, "batch.jsonl", [lines[0], odd, *lines[1:]])

    report = load_email_events(warehouse, folder)
    apply_email_events(warehouse)

    assert (report.loaded, report.rejected) == (4, 0)
    stored = warehouse.execute("select reason from raw.email_events where sg_event_id = 'odd'")
    assert stored.fetchone()[0] == reason
    assert suppressed(warehouse) == {**GOOD_SUPPRESSIONS, "odd@x.com": "bounce"}
    assert file_counts(warehouse) == [(4, 4, 0, 0)]


@pytest.mark.parametrize("char", CONTROL, ids=lambda c: f"U+{ord(c):04X}")
def test_a_raw_control_character_rejects_one_event_not_two(
    warehouse: duckdb.DuckDBPyConnection, data_dir: Path, char: str
) -> None:
    folder = data_dir / "landing" / "email_events"
    odd = bad(reason="a-b").replace(b"a-b", f"a{char}b".encode())
    assert char.encode() in odd
    lines = [line(e) for e in good_events()]
    write(folder, "batch.jsonl", [lines[0], odd, *lines[1:]])

    report = load_email_events(warehouse, folder)

    assert (report.loaded, dict(report.rejections)) == (3, {"invalid_json": 1})
    [(_, number, raw, _, _)] = rejected_rows(warehouse)
    assert (number, raw) == (2, odd.decode())  # the whole record, on its own line number
    assert file_counts(warehouse) == [(4, 3, 1, 0)]


def test_crlf_line_endings_and_a_byte_order_mark_still_load(
    warehouse: duckdb.DuckDBPyConnection, data_dir: Path
) -> None:
    folder = data_dir / "landing" / "email_events"
    lines = [line(e) for e in good_events()]
    write(folder, "crlf.jsonl", [b"\xef\xbb\xbf" + lines[0], *lines[1:]], end=b"\r\n")

    report = load_email_events(warehouse, folder)

    assert (report.loaded, report.rejected) == (3, 0)


def test_whole_file_faults_are_recorded_once_and_never_raise(
    warehouse: duckdb.DuckDBPyConnection, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = data_dir / "landing" / "email_events"
    good = [line(e) for e in good_events()]
    # gzip bytes (not text at all), an empty file, a file cut mid-event, one too large
    write(folder, "a_binary.jsonl", [bytes(range(256)) * 4 + b"\x1f\x8b\x08\xff"])
    (folder / "b_empty.jsonl").write_bytes(b"")
    (folder / "c_truncated.jsonl").write_bytes(b"\n".join(good) + b'\n{"sg_event_id": "cu')
    big = write(folder, "d_big.jsonl", [line({"sg_event_id": "big", "event": "open"})] * 50)
    monkeypatch.setattr(load_module, "MAX_FILE_BYTES", big.stat().st_size - 1)

    report = load_email_events(warehouse, folder)
    apply_email_events(warehouse)

    assert report.files == 4 and report.loaded == 3
    counts = dict(
        warehouse.execute(
            "select regexp_extract(path, '[a-z]_[a-z]+\\.jsonl'),"
            " [rows_read, rows_loaded, rows_rejected, rows_duplicate] from raw.ingested_files"
        ).fetchall()
    )
    binary_lines = len([x for x in (bytes(range(256)) * 4).split(b"\n") if x.strip()])
    assert counts == {
        "a_binary.jsonl": [binary_lines, 0, binary_lines, 0],
        "b_empty.jsonl": [0, 0, 0, 0],
        "c_truncated.jsonl": [4, 3, 1, 0],
        "d_big.jsonl": [1, 0, 1, 0],
    }
    assert unbalanced_files(warehouse) == []
    [(number, raw, message)] = warehouse.execute(
        "select line_number, raw_record, error_message from raw.email_events_rejected"
        " where error_code = 'file_too_large'"
    ).fetchall()
    assert number is None and raw is None and str(big.stat().st_size) in message
    assert suppressed(warehouse) == GOOD_SUPPRESSIONS

    again = load_email_events(warehouse, folder)
    assert (again.files, again.rejected, again.skipped) == (0, 0, [])


def test_links_and_special_files_are_skipped_with_a_reason(
    warehouse: duckdb.DuckDBPyConnection, data_dir: Path, tmp_path: Path
) -> None:
    folder = data_dir / "landing" / "email_events"
    write(folder, "real.jsonl", [line(e) for e in good_events()])
    outside = write(tmp_path / "outside", "secret.jsonl", [line(good_events("x")[0])])
    (folder / "link.jsonl").symlink_to(outside)
    (folder / "passwd.jsonl").symlink_to("/etc/passwd")
    (folder / "linked_dir").symlink_to(outside.parent, target_is_directory=True)
    os.mkfifo(folder / "fifo.jsonl")  # reading it would block forever

    report = load_email_events(warehouse, folder)

    assert (report.files, report.loaded, report.rejected) == (1, 3, 0)
    assert sorted((Path(p).name, why) for p, why in report.skipped) == [
        ("fifo.jsonl", "not a regular file"),
        ("link.jsonl", "symlink, not followed"),
        ("linked_dir", "symlinked folder, not followed"),
        ("passwd.jsonl", "symlink, not followed"),
    ]
    paths = [row[0] for row in warehouse.execute("select path from raw.ingested_files").fetchall()]
    assert [Path(p).name for p in paths] == ["real.jsonl"]
    assert rejected_rows(warehouse) == []


def test_an_event_the_warehouse_refuses_anyway_is_rejected_alone(
    warehouse: duckdb.DuckDBPyConnection, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The last line of defence: should validation ever let through a value DuckDB refuses,
    # that event alone is rejected (`load_failed`), not the file, and nothing raises.
    folder = data_dir / "landing" / "email_events"
    write(folder, "batch.jsonl", [line(e) for e in good_events()] + [bad()])
    real = load_module.parse_event

    def lax(raw: bytes):
        result = real(raw)
        if isinstance(result, EmailEvent) and result.sg_event_id == "bad":
            return EmailEvent(**{**result.__dict__, "payload": "{not json"})
        return result

    monkeypatch.setattr(load_module, "parse_event", lax)

    report = load_email_events(warehouse, folder)
    apply_email_events(warehouse)

    assert (report.loaded, dict(report.rejections)) == (3, {"load_failed": 1})
    [(_, number, raw, code, message)] = rejected_rows(warehouse)
    assert (number, raw, code) == (4, bad().decode(), "load_failed")
    assert "refused" in message
    assert file_counts(warehouse) == [(4, 3, 1, 0)]
    assert suppressed(warehouse) == GOOD_SUPPRESSIONS


def test_poison_delivered_through_the_receiver_never_stops_a_send_run(
    warehouse: duckdb.DuckDBPyConnection, data_dir: Path
) -> None:
    """The failure this guards against: the receiver answered 200 for a batch holding one
    poison event; every later `bis send` (whose first stage is this one) must still run, and
    the events beside the poison one must become suppressions."""
    warehouse.close()  # the stage opens the warehouse itself, like `bis send`
    settings = load_settings()
    app = create_app(landing_dir=settings.landing_email_events_dir, public_key=SIGNER.public_key)
    now = int(datetime.now(UTC).timestamp())  # the signature's freshness window is real time
    poisons = [
        b'{"sg_event_id": "p1", "event": "bounce", "timestamp": 1e20}',
        b'{"sg_event_id": "p2", "event": "bounce", "email": {"a": 1}, "timestamp": 1}',
        b'{"sg_event_id": "p3", "event": "open", "timestamp": 1, "x": "\\ud800"}',
        b"[" * 60 + b"]" * 60,
        b"17",
    ]
    for i, poison in enumerate(poisons):
        events = [line(e) for e in good_events(f"g{i}")]
        body = b"[" + b", ".join([events[0], poison, *events[1:]]) + b"]"
        response = call(app, "POST", EVENTS_PATH, headers=SIGNER.headers(body, now), body=body)
        assert response.status == 200, response.body  # stored whole, not refused whole

    for _ in range(2):  # this run, and the next one
        run = build_run_context(settings, datetime(2025, 11, 25, tzinfo=UTC))
        email_events_step(run, warehouse_opener(settings))

    with open_warehouse(settings.warehouse, read_only=True) as con:
        assert con.execute("select count(*) from raw.email_events").fetchone()[0] == 15
        codes = [r[3] for r in rejected_rows(con)]
        assert sorted(codes) == sorted(
            [
                "timestamp_out_of_range",
                "wrong_field_type",
                "invalid_json",
                "not_an_object",
                "not_an_object",
            ]
        )
        assert len(suppressed(con)) == 15
        assert unbalanced_files(con) == []


# The receiver: only the body as a whole can be refused (400, never 500). SendGrid retries
# a refused batch and then drops it, so a batch is refused only when no part of it can be
# SendGrid's; one odd element is stored with the rest and rejected alone by the loader.
DEEP_BODIES = {
    "100k nested arrays": nested(100_000),
    "100k nested objects": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "100k opened, never closed": b"[" * 100_000,
    "100k nested inside one event": b'[{"ok": 1}, {"a": ' + nested(100_000) + b"}]",
    "65 levels": nested(65),
    "65 levels inside one event": b'[{"a": ' + nested(63) + b"}]",
}


def post_signed(app, body: bytes):
    return call(app, "POST", EVENTS_PATH, headers=SIGNER.headers(body), body=body)


@pytest.mark.parametrize("body", DEEP_BODIES.values(), ids=DEEP_BODIES.keys())
def test_receiver_answers_400_for_deep_nesting_and_stores_nothing(
    tmp_path: Path, body: bytes
) -> None:
    landing = tmp_path / "email_events"
    app = create_app(landing_dir=landing, public_key=SIGNER.public_key)

    response = post_signed(app, body)

    assert response.status == 400, response.body
    assert "nests deeper than 64 levels" in response.json()["error"]
    assert not landing.exists() or not any(landing.rglob("*"))


def test_receiver_accepts_nesting_up_to_the_limit(tmp_path: Path) -> None:
    landing = tmp_path / "email_events"
    app = create_app(landing_dir=landing, public_key=SIGNER.public_key)
    body = b'[{"a": ' + nested(62) + b"}]"  # 64 levels: the array, the event, 62 more
    assert post_signed(app, body).status == 200


ODD_ELEMENTS = {
    "number": b"17",
    "string": b'"delivered"',
    "array": b'["bounce"]',
    "null": b"null",
    "number too large": b'{"sg_event_id": "o", "event": "open", "timestamp": 1e400}',
    "lone surrogate": b'{"sg_event_id": "o", "event": "open", "email": "\\udc00",'
    b' "timestamp": 1764000000}',
    "wrong type": b'{"sg_event_id": "o", "event": "open", "email": {"a": 1},'
    b' "timestamp": 1764000000}',
    "U+2028 in a value, no timestamp": '{"sg_event_id": "o", "event": "x\u2028"}'.encode(),
}


@pytest.mark.parametrize("odd", ODD_ELEMENTS.values(), ids=ODD_ELEMENTS.keys())
def test_one_odd_element_is_stored_with_the_batch_and_rejected_alone(
    warehouse: duckdb.DuckDBPyConnection, data_dir: Path, odd: bytes
) -> None:
    landing = data_dir / "landing" / "email_events"
    app = create_app(landing_dir=landing, public_key=SIGNER.public_key)
    events = [line(e) for e in good_events()]
    body = b"[" + b",\n ".join([events[0], odd, *events[1:]]) + b"]"

    response = post_signed(app, body)

    assert response.status == 200, response.body
    assert response.json() == {"stored": 4}
    [stored] = [p for p in landing.rglob("*.jsonl")]
    assert stored.read_bytes().split(b"\n")[1] == odd  # exactly as sent, on its own line
    report = load_email_events(warehouse, landing)
    apply_email_events(warehouse)
    assert (report.loaded, report.rejected) == (3, 1)
    assert suppressed(warehouse) == GOOD_SUPPRESSIONS
    assert unbalanced_files(warehouse) == []


def test_migration_moves_earlier_webhook_rejections_to_their_own_table(
    warehouse: duckdb.DuckDBPyConnection,
) -> None:
    # Before migration 005 the loader wrote its rejections into raw.events_rejected.
    now = datetime(2026, 1, 1, tzinfo=UTC)
    warehouse.execute(
        "insert into raw.ingested_files (path, sha256, file_format, size_bytes, rows_read,"
        " rows_loaded, rows_rejected, rows_duplicate, ingested_at) values"
        " ('/l/email_events/a.jsonl', 'h1', 'email_events', 9, 1, 0, 1, 0, $now),"
        " ('/l/events/b.jsonl', 'h2', 'jsonl', 9, 1, 0, 1, 0, $now)",
        {"now": now},
    )
    warehouse.execute(
        "insert into raw.events_rejected (source_file, line_number, raw_record, error_code,"
        " error_message, rejected_at) values"
        " ('/l/email_events/a.jsonl', 1, 'x', 'invalid_json', 'not JSON', $now),"
        " ('/l/events/b.jsonl', 1, 'y', 'invalid_json', 'not JSON', $now)",
        {"now": now},
    )
    warehouse.execute("delete from messaging.schema_migrations where version = 5")

    assert apply_migrations(warehouse) == ["005_email_events_rejected.sql"]

    product = warehouse.execute("select source_file from raw.events_rejected").fetchall()
    webhook = [row[:4] for row in rejected_rows(warehouse)]
    assert product == [("/l/events/b.jsonl",)]
    assert webhook == [("/l/email_events/a.jsonl", 1, "x", "invalid_json")]
