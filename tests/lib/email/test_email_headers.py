"""headers.py: cleaning untrusted header text, and prepared headers that only fold."""

from __future__ import annotations

import pytest

from pipelines.lib.email.headers import (
    MAX_NAME_CHARS,
    MAX_SUBJECT_CHARS,
    PreparedHeader,
    address_header,
    display_name,
    header_text,
    sendgrid_name,
    subject_text,
    unstructured_header,
)
from tests.lib.email.test_email_header_injection import HOSTILE, LEGITIMATE, NAMES, clean, is_clean

# Text no warehouse string can hold (DuckDB stores valid UTF-8): only the cleaning sees it.
UNENCODABLE = {"lone_surrogate": "Ann\ud800Lee\udfff"}


@pytest.mark.parametrize("key", sorted({**NAMES, **UNENCODABLE}))
def test_display_names_are_clean_short_and_idempotent(key: str) -> None:
    name = display_name({**NAMES, **UNENCODABLE}[key])
    assert is_clean(name)
    assert len(name) <= MAX_NAME_CHARS
    assert name == name.strip() and "  " not in name
    assert display_name(name) == name


@pytest.mark.parametrize("key", sorted(LEGITIMATE))
def test_legitimate_names_survive_unchanged(key: str) -> None:
    assert display_name(LEGITIMATE[key]) == LEGITIMATE[key]


def test_cleaning_replaces_breaks_with_spaces_and_drops_invisible_characters() -> None:
    assert display_name("Ann\r\nLee") == "Ann Lee"
    assert display_name("Ann\u2028Lee") == "Ann Lee"
    assert display_name("Ann\x00Lee") == "AnnLee"
    assert display_name("\u202eAnn\u202c") == "Ann"
    assert display_name(None) == display_name("") == display_name(" \t ") == ""
    assert header_text("abcdef", 3) == "abc"
    assert subject_text("é" * 10_000) == "é" * MAX_SUBJECT_CHARS


def test_a_prepared_header_refuses_anything_but_folds() -> None:
    for bad in ("a\r\nBcc: x@evil.example", "a\nBcc: x", "a\n\n b", "é", "x" * 1000):
        with pytest.raises(ValueError):
            PreparedHeader("To", bad)
    with pytest.raises(ValueError, match="invalid email address"):
        address_header("To", "Ann", "ann@example.com\r\nBcc: x@evil.example")


@pytest.mark.parametrize("key", sorted({**NAMES, **UNENCODABLE}))
def test_the_cleaning_matches_the_written_contract(key: str) -> None:
    raw = {**NAMES, **UNENCODABLE}[key]
    assert display_name(raw) == clean(raw, MAX_NAME_CHARS)
    assert subject_text(raw) == clean(raw, MAX_SUBJECT_CHARS)


@pytest.mark.parametrize("key", sorted(HOSTILE))
def test_prepared_headers_are_ascii_folded_and_short(key: str) -> None:
    for header in (
        address_header("To", HOSTILE[key], "ann@example.com"),
        unstructured_header("Subject", HOSTILE[key]),
    ):
        text = f"{header.name}: {header}"
        assert text.isascii()
        assert all(len(line) <= 78 for line in text.split("\n"))
        assert all(line[:1] == " " for line in text.split("\n")[1:])


def test_sendgrid_names_are_plain_unless_sendgrid_could_misread_them() -> None:
    assert sendgrid_name("Zoë Ørsted") == "Zoë Ørsted"
    assert sendgrid_name("Dr. Ann Lee") == "Dr. Ann Lee"
    for raw in ("Lee, Ann", "Ann; x", "Ann <x@evil.example>", "x@evil.example", "=?utf-8?q?x?="):
        encoded = sendgrid_name(raw)
        assert encoded.startswith("=?utf-8?") and encoded.isascii(), raw
