"""Header values from untrusted text: display names and subjects, built, never concatenated.

A recipient's name comes from `identify` traits (anyone can set it), the subject is rendered
with user data and the sender's name comes from settings. None of them may add, hide or
replace a recipient, whatever it holds. Three steps:

1. `header_text` cleans the text: control characters (C0 incl. NUL, C1, DEL), invisible
   format characters (bidi overrides and isolates, zero-width spaces, BOM; ZWJ/ZWNJ stay,
   scripts need them) and lone surrogates are removed; every kind of line break or
   whitespace (CR, LF, TAB, U+2028/2029, NBSP, ...) becomes one space; the result is cut on a
   character boundary (MAX_NAME_CHARS / MAX_SUBJECT_CHARS), so folded lines stay short.
2. For the outbox's .eml, `address_header` / `unstructured_header` encode the cleaned text
   with the standard library's RFC 2047 machinery (`email.header.Header`): any text that is
   not plain ASCII, or that contains `=?`, is written as encoded words. So an encoded word in
   the input (`=?utf-8?q?Bcc=3A_x=40evil.example?=`) is re-encoded and a reader decoding the
   header sees that literal text as the name, not a header or an address. The result is a
   prepared header object that `email.message.EmailMessage` writes as is: the library's own
   header registry would decode such a word and write the decoded text back raw, which is
   exactly the injection (`To: Bcc: x@evil.example <...>`).
3. For SendGrid, which builds the header itself from `to.name`, `sendgrid_name` passes the
   same cleaned name, RFC 2047-encoded when it holds a character SendGrid's address parsing
   splits or re-reads (`,` `;` `<` `>` `"` ...; its API documents that a comma or semicolon
   in a name misroutes the message) or `=?`. Encoded words are pure ASCII with none of those
   characters, and a reader decoding them sees exactly the cleaned name.
"""

from __future__ import annotations

import re
import unicodedata
from email.header import Header
from email.headerregistry import Address
from email.policy import Policy
from email.utils import quote

from pipelines.lib.email.addresses import email_address_problem

# 200 characters of the widest UTF-8 (4 bytes) are 800 bytes, ~11 encoded words of 75: a name
# never needs more than a dozen short folded lines.
MAX_NAME_CHARS = 200
MAX_SUBJECT_CHARS = 500
# RFC 5322: a line SHOULD stay within 78 characters and MUST within 998 octets.
LINE_LENGTH = 78
MAX_LINE_OCTETS = 998

_KEEP_FORMAT = frozenset("\u200c\u200d")  # ZWNJ, ZWJ: needed by Persian, Indic, emoji
_ATOM_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
# What SendGrid's own parsing of `name <email>` may split on or read as structure.
_SENDGRID_UNSAFE = re.compile(r"[()<>\[\]:;,@\\\"]|=\?")


def header_text(value: str | None, max_chars: int) -> str:
    """`value` safe for one header line: no control or invisible characters, single spaces,
    at most `max_chars` characters (cut on a character boundary)."""
    if not value:
        return ""
    if value.isprintable() and "  " not in value and value == value.strip():
        text = value  # the common case: nothing to remove (isprintable() is false for every
        # control, format, surrogate and separator character other than the ASCII space)
    else:
        kept = []
        for char in value:
            if char.isspace():
                kept.append(" ")
            elif char in _KEEP_FORMAT or unicodedata.category(char) not in ("Cc", "Cf", "Cs"):
                kept.append(char)
        text = " ".join("".join(kept).split())
    return text[:max_chars].rstrip()


def display_name(value: str | None) -> str:
    """The cleaned display name every sender uses for a recipient or the sender."""
    return header_text(value, MAX_NAME_CHARS)


def subject_text(value: str | None) -> str:
    """The cleaned subject line."""
    return header_text(value, MAX_SUBJECT_CHARS)


def encoded_words(text: str, *, header_name: str | None = None, linesep: str = "\n") -> str:
    """`text` as RFC 2047 UTF-8 encoded words of at most 75 characters, joined by
    `linesep` + one space (a fold when linesep is a line break, one space when empty)."""
    header = Header(text, "utf-8", maxlinelen=LINE_LENGTH, header_name=header_name)
    return header.encode(linesep=linesep)


def sendgrid_name(value: str | None) -> str:
    """`to.name` / `from.name` for SendGrid: the cleaned name, encoded when SendGrid could
    read part of it as address structure or as an encoded word."""
    name = display_name(value)
    if _SENDGRID_UNSAFE.search(name):
        return encoded_words(name, linesep="")
    return name


class PreparedHeader(str):
    """A header already encoded and folded here; `EmailMessage` stores and writes it as is.

    This is the header-object protocol of `email.policy.EmailPolicy`: a value with a `name`
    attribute is stored unchanged and written by calling its `fold(policy=...)`.
    """

    name: str

    def __new__(cls, name: str, folded: str) -> PreparedHeader:
        lines = folded.split("\n")
        if "\r" in folded or any(not line[:1].isspace() for line in lines[1:]):
            raise ValueError(f"{name}: a prepared header may only contain folds (LF + space)")
        if not folded.isascii():
            raise ValueError(f"{name}: a prepared header must be ASCII (encoded words)")
        if len(name) + 2 + len(lines[0]) > MAX_LINE_OCTETS or any(
            len(line) > MAX_LINE_OCTETS for line in lines[1:]
        ):
            raise ValueError(f"{name}: a header line would exceed {MAX_LINE_OCTETS} octets")
        header = super().__new__(cls, folded)
        header.name = name
        return header

    def fold(self, *, policy: Policy) -> str:
        folded = str(self).replace("\n", policy.linesep)
        return f"{self.name}: {folded}{policy.linesep}"


def _phrase(name: str, header_name: str) -> str:
    """The display-name phrase, ASCII: atoms as they are, a quoted string (`"Lee, Ann"`), or
    encoded words (anything else, and whatever would not fit on the first line)."""
    if name.isascii() and "=?" not in name:
        phrase = name if _ATOM_PHRASE.fullmatch(name) else f'"{quote(name)}"'
        if len(header_name) + 2 + len(phrase) <= LINE_LENGTH:
            return phrase
    return encoded_words(name, header_name=header_name)


def address_header(header_name: str, name: str | None, address: str) -> PreparedHeader:
    """`To` / `From` with one mailbox: the cleaned `name` and a valid `address`.

    Raises ValueError for an address outside the one rule (addresses.py).
    """
    problem = email_address_problem(address)
    if problem:
        raise ValueError(f"{header_name}: {problem}: {address!r}")
    angle = f"<{Address(addr_spec=address).addr_spec}>"
    cleaned = display_name(name)
    if not cleaned:
        return PreparedHeader(header_name, angle)
    phrase = _phrase(cleaned, header_name)
    last = phrase.rsplit("\n", 1)[-1]
    width = len(last) + (len(header_name) + 2 if "\n" not in phrase else 0)
    # The address goes on the phrase's last line when it fits, else on a line of its own.
    separator = " " if width + 1 + len(angle) <= LINE_LENGTH else "\n "
    return PreparedHeader(header_name, phrase + separator + angle)


def unstructured_header(header_name: str, text: str | None) -> PreparedHeader:
    """`Subject`-like header: the cleaned text, folded; encoded words unless plain ASCII."""
    cleaned = subject_text(text)
    if not cleaned:
        return PreparedHeader(header_name, "")
    if cleaned.isascii() and "=?" not in cleaned:
        plain = Header(cleaned, "us-ascii", maxlinelen=LINE_LENGTH, header_name=header_name).encode(
            linesep="\n"
        )
        lines = plain.split("\n")
        # Folding ASCII needs spaces: a long word would stay one long line, so encode instead.
        first = len(header_name) + 2 + len(lines[0])
        if lines[0] and first <= LINE_LENGTH and all(len(x) <= LINE_LENGTH for x in lines[1:]):
            return PreparedHeader(header_name, plain)
    return PreparedHeader(header_name, encoded_words(cleaned, header_name=header_name))


__all__ = [
    "MAX_LINE_OCTETS",
    "MAX_NAME_CHARS",
    "MAX_SUBJECT_CHARS",
    "PreparedHeader",
    "address_header",
    "display_name",
    "encoded_words",
    "header_text",
    "sendgrid_name",
    "subject_text",
    "unstructured_header",
]
