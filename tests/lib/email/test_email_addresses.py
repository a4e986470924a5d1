"""One email-validity rule: the planner's SQL (DuckDB, RE2) and Python agree on every address."""

from __future__ import annotations

import random

import duckdb
import pytest

from pipelines.lib.email.addresses import (
    EMAIL_PATTERN,
    MAX_EMAIL_LENGTH,
    email_address_problem,
    is_valid_email,
    valid_email_sql,
)

LONG_LOCAL = "a" * 64
# 254 characters exactly: the longest address the rule accepts.
LONGEST = f"{LONG_LOCAL}@{'b' * 63}.{'c' * 63}.{'d' * 57}.com"
assert len(LONGEST) == MAX_EMAIL_LENGTH

VALID = [
    "ann@example.com",
    "Ann.Lee@Example.COM",
    "ann+tag@mail.example.co.uk",
    "o'brien@example.ie",
    "a!#$%&'*+/=?^_`{|}~-b@example.com",
    "1234@123.example.org",
    "ann@my-host.example",
    "ann@xn--bcher-kva.example",  # IDN domain in punycode (bücher)
    "ann@XN--BCHER-KVA.example",
    LONGEST,
]
INVALID = [
    "",
    "ann",
    "ann@",
    "@example.com",
    "ann@@example.com",
    "ann@b@example.com",
    " ann@example.com",
    "ann@example.com ",
    "ann @example.com",
    "ann@example.com\n",  # `$` in a Python regex would let this one through
    "ann@example.com\r\nBcc: x@evil.example",
    "ann\x00@example.com",
    "ann@example.com\x00",
    "ann\t@example.com",
    "ann@example.com.",  # trailing dot
    ".ann@example.com",
    "ann.@example.com",
    "ann..lee@example.com",
    '"ann lee"@example.com',  # quoted local parts: legal, but not sendable here
    '"ann"@example.com',
    "ann(comment)@example.com",
    "ann@[192.0.2.1]",
    "ann@localhost",  # single label
    "ann@example.c",  # one-letter TLD
    "ann@example.123",  # numeric TLD
    "ann@-example.com",
    "ann@example-.com",
    "ann@example..com",
    f"ann@{'b' * 64}.com",  # label over 63
    "ann@xn--80ak6aa92e.xn--p1ai",  # punycode TLD (.рф): refused, see addresses.py
    "ann@example.xn--",
    "José@example.com",  # SMTPUTF8 local part
    "用户@例子.广告",
    "ann@bücher.example",  # IDN domain not in punycode
    "ann@ex\u0430mple.com",  # Cyrillic a (U+0430) inside a Latin domain
    "ann\uff20example.com",  # fullwidth @
    "ann@example.com\u2028",
    "\u202eann@example.com",
    "ann@example\u3002com",  # ideographic full stop
    "a" + LONGEST,  # 255 characters
]


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    return duckdb.connect()


def sql_valid(con: duckdb.DuckDBPyConnection, address: str | None) -> bool:
    query = f"select {valid_email_sql('e')} from (select ?::varchar as e)"
    return con.execute(query, [address]).fetchone()[0]


@pytest.mark.parametrize("address", VALID)
def test_valid_addresses_pass_in_sql_and_python(con, address: str) -> None:
    assert is_valid_email(address)
    assert email_address_problem(address) is None
    assert sql_valid(con, address) is True


@pytest.mark.parametrize("address", INVALID)
def test_invalid_addresses_fail_in_sql_and_python(con, address: str) -> None:
    assert not is_valid_email(address)
    assert email_address_problem(address) in ("empty email address", "invalid email address")
    assert sql_valid(con, address) is False


def test_null_is_invalid_in_both(con) -> None:
    assert sql_valid(con, None) is False
    assert not is_valid_email(None)
    assert email_address_problem(None) == "empty email address"


def test_sql_and_python_agree_on_random_near_misses(con) -> None:
    """Mutations of valid addresses (inserted, doubled or removed characters, including the
    ones RE2 and Python's `re` might read differently) get the same verdict on both sides."""
    rng = random.Random(20261124)
    alphabet = [*"aZ09.-_+@'\"\\ \t\n\r\x00()[]<>,;:é中\u2028\u00a0\u0085$^`{}|~", "xn--"]
    cases: set[str] = set()
    for base in VALID:
        for _ in range(60):
            chars = list(base)
            at = rng.randrange(len(chars) + 1)
            action = rng.choice(("insert", "delete", "double"))
            if action == "insert":
                chars.insert(at, rng.choice(alphabet))
            elif action == "delete" and chars:
                del chars[min(at, len(chars) - 1)]
            elif chars:
                chars.insert(at, chars[min(at, len(chars) - 1)])
            cases.add("".join(chars))
    table = sorted(cases)
    rows = con.execute(
        f"select e, {valid_email_sql('e')} from unnest(?::varchar[]) t(e)", [table]
    ).fetchall()
    assert len(rows) == len(table)
    disagree = [(e, sql) for e, sql in rows if sql != is_valid_email(e)]
    assert disagree == []
    verdicts = {sql for _, sql in rows}
    assert verdicts == {True, False}  # the mutations really hit both sides of the rule


def test_the_pattern_has_no_construct_whose_meaning_differs_between_re_and_re2() -> None:
    # Anchors, \s \w \d and friends, and case-insensitive flags behave differently in Python's
    # `re` (Unicode-aware, `$` before a final newline) and RE2: the rule must not use them.
    outside_classes = EMAIL_PATTERN.replace("[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]", "")
    for construct in ("^", "$", "\\s", "\\w", "\\d", "\\b", "(?i", "\\Z", "\\z"):
        assert construct not in outside_classes
