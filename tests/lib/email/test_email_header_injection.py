"""Headers are built, not concatenated: no display name, sender name or subject, however
hostile, can add, hide or replace a recipient, in the outbox's .eml or in the SendGrid request.

Only the senders' public API is used; what a cleaned name must look like is spelled out here
(`clean`), independently of pipelines/lib/email/headers.py."""

from __future__ import annotations

import email.policy
import unicodedata
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses
from pathlib import Path

import pytest

from pipelines.lib.email import (
    OutboxSender,
    OutgoingBatch,
    Recipient,
    SenderIdentity,
    SendGridSender,
    TemplateRenderer,
)
from pipelines.lib.email.render import apply_substitutions
from tests.support.fake_sendgrid import FakeSendGrid

NOW = datetime(2026, 11, 24, 15, 30, tzinfo=UTC)
IDENTITY = SenderIdentity(
    from_email="hello@acme.example",
    from_name="Acme Onboarding",
    unsubscribe_url="https://acme.example/unsubscribe",
    postal_address="Acme Inc., 1 Main Street, Springfield 12345",
    app_url="https://app.acme.example",
)
EVIL = "x@evil.example"

HOSTILE = {
    # RFC 2047 encoded words that decode to a header, an address list or a line break.
    "ew_q_bcc": "=?utf-8?q?Bcc=3A_x=40evil=2Eexample?=",
    "ew_b_bcc": "=?utf-8?b?QmNjOiB4QGV2aWwuZXhhbXBsZQ==?=",
    "ew_list": "=?utf-8?q?x=40evil=2Eexample=2C_y?= <y@evil.example>",
    "ew_crlf": "=?utf-8?q?=0D=0ABcc:_x@evil.example?=",
    "ew_in_quotes": '"=?utf-8?q?x=40evil=2Eexample?="',
    "ew_mixed": "Ann =?iso-8859-1?q?Bcc=3A?= x@evil.example",
    # Line breaks and control characters.
    "crlf": "Ann\r\nBcc: x@evil.example",
    "lf": "Ann\nBcc: x@evil.example",
    "cr": "Ann\rBcc: x@evil.example",
    "blank_line": "Ann\r\n\r\nBody starts here",
    "nul": "Ann\x00Lee",
    "nul_crlf": "Ann\x00\r\nBcc: x@evil.example",
    "c0_c1": "Ann\x1b[31m\x7f\x9bLee\x0b\x0c",
    "unicode_breaks": "Ann\u2028Bcc: x@evil.example\u2029\u0085",
    "tab": "Ann\tLee",
    # Length: folded lines must stay within 998 octets.
    "10k_ascii": "x" * 10_000,
    "10k_words": "Ann " * 2_500,
    "10k_accents": "é" * 10_000,
    "10k_cjk": "中文" * 5_000,
    # Address syntax inside the name.
    "comma": "Lee, Ann",
    "semicolon_group": "Undisclosed:; Bcc: x@evil.example;",
    "angle": "Ann <x@evil.example>",
    "address": EVIL,
    "quotes": 'Ann "The Boss" Lee',
    "quote_breakout": '"; Bcc: x@evil.example; "',
    "backslash": "Ann\\",
    "open_comment": "Ann (comment",
    "brackets": "Ann [x@evil.example]",
    # Invisible or misleading characters.
    "rtl_override": "\u202eelpmaxe.live@x\u202c",
    "isolates": "Ann\u2066Lee\u2069",
    "zero_width": "Ann\u200bLee\ufeff",
    "only_spaces": "   ",
}
LEGITIMATE = {
    "ascii": "Ann Lee",
    "apostrophe": "Ann O'Brien",
    "dotted": "Dr. Ann Lee",
    "accents": "Zoë Ørsted-Álvarez",
    "cjk": "中文名字",
    "arabic": "محمد",
    "emoji": "Ann 🎉",
    "zwj_emoji": "👩\u200d💻 Ann",
    "zwnj": "می\u200cخواهم",  # noqa: RUF001 - Persian, written as it is
}
NAMES = {**HOSTILE, **LEGITIMATE}
EXPECTED_HEADERS = {
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "X-BIS-Send-Id",
    "X-BIS-Sequence",
    "X-BIS-Step",
    "Content-Type",
    "MIME-Version",
}


MAX_NAME_CHARS = 200
MAX_SUBJECT_CHARS = 500


def clean(text: str | None, limit: int) -> str:
    """The contract: controls, format characters (but ZWJ/ZWNJ) and surrogates removed, any
    whitespace or line break a single space, trimmed, at most `limit` characters."""
    kept = "".join(
        " " if char.isspace() else char
        for char in text or ""
        if char.isspace()
        or char in "\u200c\u200d"
        or unicodedata.category(char) not in ("Cc", "Cf", "Cs")
    )
    return " ".join(kept.split())[:limit].rstrip()


def display_name(text: str | None) -> str:
    return clean(text, MAX_NAME_CHARS)


def subject_text(text: str | None) -> str:
    return clean(text, MAX_SUBJECT_CHARS)


@pytest.fixture
def templates(tmp_path: Path) -> Path:
    root = tmp_path / "templates"
    (root / "t").mkdir(parents=True)
    # The name reaches the subject too: the subject is rendered with user data.
    (root / "t/hello.subject.j2").write_text("Hi {{ user.first_name }}, one step left")
    (root / "t/hello.html.j2").write_text("<p>Hi {{ user.first_name }}</p>")
    (root / "t/hello.txt.j2").write_text("Hi {{ user.first_name }}")
    return root


def recipient(index: int, name: str | None) -> Recipient:
    return Recipient(
        send_id=f"s{index:03d}",
        user_id=f"u{index:03d}",
        email=f"user{index}@example.com",
        name=name,
        context={"first_name": name},
    )


def is_clean(text: str) -> bool:
    """No control, format (except ZWJ/ZWNJ), surrogate or line-separator characters."""
    return all(
        char == " "
        or char in "\u200c\u200d"
        or unicodedata.category(char) not in ("Cc", "Cf", "Cs", "Zl", "Zp", "Zs")
        for char in text
    )


def rfc2047_decoded(phrase: str) -> str:
    """What an RFC-conforming reader shows for a display-name phrase."""
    return str(make_header(decode_header(phrase)))


def assert_one_clean_recipient(data: bytes, address: str, name: str) -> EmailMessage:
    header_block = data.split(b"\r\n\r\n", 1)[0]
    assert b"\n" not in header_block.replace(b"\r\n", b"") and b"\r" not in header_block.replace(
        b"\r\n", b""
    )
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    assert header_block.isascii()
    message = BytesParser(policy=email.policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    assert set(message.keys()) == EXPECTED_HEADERS  # no Bcc, Cc, Reply-To or anything else
    assert all(len(message.get_all(key)) == 1 for key in EXPECTED_HEADERS)
    [to] = message["To"].addresses
    assert to.addr_spec == address
    # The library's reader (keeps spaces between encoded words, a known quirk: compare
    # without them) and an RFC-conforming decode both show the cleaned name, literally.
    assert to.display_name.replace(" ", "") == display_name(name).replace(" ", "")
    [(raw_to,)] = [(value,) for key, value in message.raw_items() if key == "To"]
    unfolded = raw_to.replace("\r\n", "").replace("\n", "")
    [(phrase, parsed_address)] = getaddresses([unfolded])  # a second, independent parser
    assert parsed_address == address
    assert rfc2047_decoded(phrase) == display_name(name)
    for key, value in message.raw_items():
        if key in ("To", "From", "Subject"):
            assert all(len(line) <= 78 for line in f"{key}: {value}".splitlines()), key
    return message


# -- the outbox's .eml -----------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(NAMES))
def test_eml_has_exactly_the_intended_recipient(templates: Path, tmp_path: Path, key: str) -> None:
    name = NAMES[key]
    sender = OutboxSender(
        tmp_path / "outbox", TemplateRenderer(templates, IDENTITY), IDENTITY, clock=lambda: NOW
    )
    [outcome] = sender.send(OutgoingBatch("t/hello", "seq", "step", [recipient(1, name)]))
    assert (outcome.status, outcome.error) == ("sent", None)
    [path] = (tmp_path / "outbox").rglob("*.eml")
    message = assert_one_clean_recipient(path.read_bytes(), "user1@example.com", name)
    # The subject carried the name too: cleaned, capped, and decoded literally.
    assert str(message["Subject"]) == subject_text(f"Hi {name}, one step left")
    assert [a.addr_spec for a in message["From"].addresses] == ["hello@acme.example"]


@pytest.mark.parametrize("key", sorted(HOSTILE))
def test_a_hostile_sender_name_cannot_add_a_recipient(
    templates: Path, tmp_path: Path, key: str
) -> None:
    identity = SenderIdentity(
        from_email="hello@acme.example",
        from_name=HOSTILE[key],
        unsubscribe_url=IDENTITY.unsubscribe_url,
        postal_address=IDENTITY.postal_address,
        app_url=IDENTITY.app_url,
    )
    sender = OutboxSender(
        tmp_path / "outbox", TemplateRenderer(templates, identity), identity, clock=lambda: NOW
    )
    [outcome] = sender.send(OutgoingBatch("t/hello", "seq", "step", [recipient(1, "Ann")]))
    assert outcome.status == "sent"
    [path] = (tmp_path / "outbox").rglob("*.eml")
    message = assert_one_clean_recipient(path.read_bytes(), "user1@example.com", "Ann")
    [sender_address] = message["From"].addresses
    assert sender_address.addr_spec == "hello@acme.example"
    assert sender_address.display_name.replace(" ", "") == display_name(HOSTILE[key]).replace(
        " ", ""
    )


# -- the SendGrid request --------------------------------------------------------------------


def test_sendgrid_personalizations_name_exactly_the_intended_recipients(templates: Path) -> None:
    """Through the real client to the local fake: one `to` per personalization, the intended
    address, a clean name that no parse of `name <email>` can turn into another address."""
    keys = sorted(NAMES)
    recipients = [recipient(index, NAMES[key]) for index, key in enumerate(keys)]
    renderer = TemplateRenderer(templates, IDENTITY)
    with FakeSendGrid() as server:
        sender = SendGridSender(
            server.api_key, server.url, renderer, IDENTITY, sandbox=False, base_delay=0.01
        )
        outcomes = sender.send(OutgoingBatch("t/hello", "seq", "step", recipients))
        requests = list(server.accepted)
    assert [(o.status, o.error) for o in outcomes] == [("sent", None)] * len(keys)
    seen: dict[str, dict] = {}
    for request in requests:
        body = request.body
        assert "cc" not in body and "bcc" not in body and "reply_to" not in body
        assert body["from"] == {"email": "hello@acme.example", "name": "Acme Onboarding"}
        for personalization in body["personalizations"]:
            assert set(personalization) <= {"to", "custom_args", "headers", "substitutions"}
            [to] = personalization["to"]
            seen[personalization["custom_args"]["send_id"]] = {
                **to,
                "subject": apply_substitutions(
                    body["subject"], personalization.get("substitutions", {})
                ),
            }
    assert sorted(seen) == sorted(r.send_id for r in recipients)
    for key, sent in zip(keys, recipients, strict=True):
        got = seen[sent.send_id]
        assert got["email"] == sent.email, key
        name = got.get("name", "")
        expected = display_name(NAMES[key])
        assert bool(name) == bool(expected), key
        assert is_clean(name) and len(name) <= 1000, key
        assert all(c not in name for c in ',;<>"\\') and "@" not in name, key
        # SendGrid parses `name <email>` itself; whatever it does, one address comes out...
        assert getaddresses([f"{name} <{sent.email}>"]) == [(name, sent.email)], key
        # ... and a reader decoding the name sees exactly the cleaned name.
        assert rfc2047_decoded(name) == expected, key
        assert got["subject"] == subject_text(f"Hi {NAMES[key]}, one step left"), key
        assert is_clean(got["subject"]), key


def test_sendgrid_sender_name_is_cleaned_and_encoded(templates: Path) -> None:
    identity = SenderIdentity(
        from_email="hello@acme.example",
        from_name="Acme, Inc.\r\nBcc: x@evil.example",
        unsubscribe_url=IDENTITY.unsubscribe_url,
        postal_address=IDENTITY.postal_address,
        app_url=IDENTITY.app_url,
    )
    with FakeSendGrid() as server:
        sender = SendGridSender(
            server.api_key,
            server.url,
            TemplateRenderer(templates, identity),
            identity,
            sandbox=False,
            base_delay=0.01,
        )
        [outcome] = sender.send(OutgoingBatch("t/hello", "seq", "step", [recipient(1, "Ann")]))
        [request] = server.accepted
    assert outcome.status == "sent"
    sender_field = request.body["from"]
    assert sender_field["email"] == "hello@acme.example"
    assert getaddresses([f"{sender_field['name']} <hello@acme.example>"]) == [
        (sender_field["name"], "hello@acme.example")
    ]
    assert rfc2047_decoded(sender_field["name"]) == "Acme, Inc. Bcc: x@evil.example"
