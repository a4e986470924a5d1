"""The receiver's decisions: what is acknowledged and stored, and what is refused unstored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.lib.webhook import EVENTS_PATH, SIGNATURE_HEADER, TIMESTAMP_HEADER, create_app
from tests.lib.webhook.webhook_helpers import (
    SIGNER,
    Signer,
    call,
    final_files,
    landed_files,
    read_lines,
    sample_events,
)

NOW = 1_764_000_000


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    return tmp_path / "landing" / "email_events"


def make_app(landing: Path, **options):
    options.setdefault("public_key", SIGNER.public_key)
    options.setdefault("clock", lambda: float(NOW))
    return create_app(landing_dir=landing, **options)


def post(app, body: bytes, headers: dict[str, str] | None = None, **kwargs):
    return call(
        app,
        "POST",
        EVENTS_PATH,
        headers=SIGNER.headers(body, NOW) if headers is None else headers,
        body=body,
        **kwargs,
    )


def test_valid_signed_post_is_stored_as_json_lines_exactly_as_received(landing: Path) -> None:
    events = sample_events(3)
    body = json.dumps(events).encode()

    response = post(make_app(landing), body)

    assert response.status == 200, response.body
    assert response.json() == {"stored": 3}
    [stored] = final_files(landing)
    assert stored.parent.name == "20251124"  # day folder of receipt (UTC)
    assert read_lines(stored) == [json.dumps(event) for event in events]
    assert landed_files(landing) == [stored]  # no temp file left behind


def test_pretty_printed_body_keeps_one_event_per_line(landing: Path) -> None:
    events = sample_events(2)
    body = json.dumps(events, indent=2).encode()

    assert post(make_app(landing), body).status == 200

    [stored] = final_files(landing)
    lines = read_lines(stored)
    assert [json.loads(line) for line in lines] == events


def test_non_ascii_values_are_kept_verbatim(landing: Path) -> None:
    body = '[{"email":"zoë@example.com","sg_event_id":"é1","reason":"boîte pleine"}]'.encode()

    assert post(make_app(landing), body).status == 200

    [stored] = final_files(landing)
    assert stored.read_bytes() == body[1:-1] + b"\n"


def test_duplicate_deliveries_are_both_stored(landing: Path) -> None:
    # SendGrid retries: the same body twice. Dedupe is ingestion's job (by sg_event_id).
    app = make_app(landing)
    body = json.dumps(sample_events(2)).encode()

    assert post(app, body).status == 200
    assert post(app, body).status == 200

    files = final_files(landing)
    assert len(files) == 2
    assert read_lines(files[0]) == read_lines(files[1])


@pytest.mark.parametrize(
    ("drop", "status"),
    [(SIGNATURE_HEADER, 401), (TIMESTAMP_HEADER, 401)],
)
def test_missing_header_is_401_and_nothing_stored(landing: Path, drop: str, status: int) -> None:
    body = json.dumps(sample_events()).encode()
    headers = SIGNER.headers(body, NOW)
    del headers[drop]

    assert post(make_app(landing), body, headers).status == status
    assert landed_files(landing) == []


def test_no_headers_at_all_is_401(landing: Path) -> None:
    body = json.dumps(sample_events()).encode()
    assert post(make_app(landing), body, {"Content-Type": "application/json"}).status == 401
    assert landed_files(landing) == []


def forged_cases() -> list[tuple[str, bytes, dict[str, str]]]:
    body = json.dumps(sample_events()).encode()
    other = Signer.generate()  # a key SendGrid never gave us
    tampered_body = body.replace(b"delivered", b"bounce")
    wrong_stamp = SIGNER.headers(body, NOW)
    wrong_stamp[TIMESTAMP_HEADER] = str(NOW + 1)  # signature for NOW, header says NOW+1
    return [
        ("other key", body, other.headers(body, NOW)),
        ("tampered body", tampered_body, SIGNER.headers(body, NOW)),
        ("timestamp not signed", body, wrong_stamp),
        ("not base64", body, {**SIGNER.headers(body, NOW), SIGNATURE_HEADER: "%%%not-b64%%%"}),
        ("not DER", body, {**SIGNER.headers(body, NOW), SIGNATURE_HEADER: "aGVsbG8="}),
        ("bad timestamp", body, {**SIGNER.headers(body, NOW), TIMESTAMP_HEADER: "yesterday"}),
        ("non-UTF-8 body", b'[{"a":"\xff"}]', SIGNER.headers(b'[{"a":"\xff"}]', NOW)),
    ]


@pytest.mark.parametrize(
    ("body", "headers"), [c[1:] for c in forged_cases()], ids=[c[0] for c in forged_cases()]
)
def test_forged_signature_is_403_and_nothing_stored(
    landing: Path, body: bytes, headers: dict[str, str]
) -> None:
    response = post(make_app(landing), body, headers)
    assert response.status == 403, response.body
    assert landed_files(landing) == []


@pytest.mark.parametrize("skew", [301, -301, 86_400])
def test_timestamp_outside_window_is_403_replay(landing: Path, skew: int) -> None:
    # Correctly signed, but at a time the window does not allow: a replayed capture.
    body = json.dumps(sample_events()).encode()
    app = make_app(landing, clock=lambda: float(NOW + skew))

    response = post(app, body, SIGNER.headers(body, NOW))

    assert response.status == 403
    assert "replay" in response.json()["error"]
    assert landed_files(landing) == []


@pytest.mark.parametrize("skew", [300, -300, 0])
def test_timestamp_inside_window_is_accepted(landing: Path, skew: int) -> None:
    body = json.dumps(sample_events()).encode()
    app = make_app(landing, clock=lambda: float(NOW + skew))
    assert post(app, body, SIGNER.headers(body, NOW)).status == 200


def test_oversized_body_by_content_length_is_413_without_reading(landing: Path) -> None:
    body = json.dumps(sample_events(50)).encode()
    app = make_app(landing, max_body_bytes=len(body) - 1)

    response = post(app, body)

    assert response.status == 413
    assert response.chunks_consumed == 0  # refused on the header alone
    assert landed_files(landing) == []


def test_oversized_chunked_body_stops_reading_at_the_cap(landing: Path) -> None:
    chunk = b" " * 1024
    pieces = [b"["] + [chunk] * 100 + [b"]"]
    body = b"".join(pieces)
    app = make_app(landing, max_body_bytes=10 * 1024)

    response = post(app, body, SIGNER.headers(body, NOW), chunks=pieces, content_length=False)

    assert response.status == 413
    assert response.chunks_consumed < 20  # stopped early, not after all 102 chunks
    assert landed_files(landing) == []


def test_body_exactly_at_the_cap_is_accepted(landing: Path) -> None:
    body = json.dumps(sample_events(5)).encode()
    app = make_app(landing, max_body_bytes=len(body))
    assert post(app, body).status == 200


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b'{"event": "delivered"}',  # an object, not an array
        b'"x"',
        b"[" * 100_000 + b"]" * 100_000,  # nests past the limit (and Python's recursion)
        # Elements that are not events ([1, 2], [{...}, "x"]) are stored and rejected one
        # by one by the loader: test_poison_events.py.
        b'[{"event": "delivered"}] [{"event": "open"}]',  # trailing document
        b'[{"event": "delivered", "n": NaN}]',
        b'[{"event": "delivered"},]',
    ],
)
def test_malformed_but_signed_body_is_400_and_nothing_stored(landing: Path, body: bytes) -> None:
    response = post(make_app(landing), body)
    assert response.status == 400, response.body
    assert landed_files(landing) == []


def test_empty_array_is_acknowledged_without_a_file(landing: Path) -> None:
    response = post(make_app(landing), b"[]")
    assert response.status == 200
    assert response.json() == {"stored": 0}
    assert landed_files(landing) == []


def test_storage_failure_is_not_acknowledged_and_leaves_no_file(landing: Path) -> None:
    def disk_full(_temp: Path) -> None:
        raise OSError(28, "No space left on device")

    app = make_app(landing, before_commit=disk_full)
    response = post(app, json.dumps(sample_events()).encode())

    assert response.status == 503  # SendGrid retries any non-2xx
    assert landed_files(landing) == []


def test_without_a_key_unsigned_posts_are_accepted_and_marked(landing: Path) -> None:
    app = make_app(landing, public_key=None)
    body = json.dumps(sample_events()).encode()

    response = post(app, body, {"Content-Type": "application/json"})

    assert response.status == 200
    [stored] = final_files(landing)
    assert stored.name.endswith(".unsigned.jsonl")


def test_without_a_key_malformed_is_still_400(landing: Path) -> None:
    app = make_app(landing, public_key=None)
    assert post(app, b"nope", {}).status == 400
    assert landed_files(landing) == []


def test_signed_files_are_not_marked_unsigned(landing: Path) -> None:
    assert post(make_app(landing), json.dumps(sample_events()).encode()).status == 200
    [stored] = final_files(landing)
    assert ".unsigned" not in stored.name


@pytest.mark.parametrize("key", ["not a key", "aGVsbG8="])
def test_bad_public_key_fails_at_construction(landing: Path, key: str) -> None:
    with pytest.raises(ValueError, match="SENDGRID_WEBHOOK_PUBLIC_KEY"):
        make_app(landing, public_key=key)


def test_public_key_with_line_breaks_is_accepted(landing: Path) -> None:
    wrapped = "\n".join(SIGNER.public_key[i : i + 64] for i in range(0, len(SIGNER.public_key), 64))
    body = json.dumps(sample_events()).encode()
    assert post(make_app(landing, public_key=wrapped + "\n"), body).status == 200


def test_healthz(landing: Path) -> None:
    response = call(make_app(landing), "GET", "/healthz")
    assert response.status == 200
    assert response.json() == {"status": "ok"}


def test_get_on_events_is_405(landing: Path) -> None:
    assert call(make_app(landing), "GET", EVENTS_PATH).status == 405
