"""Who a simulated user is: ids, traits as typed into the product, and their device.

Realistic mess is deliberate: ~2% invalid time zones, ~1% malformed emails, a few legacy
numeric ids, a handful of internal admins, and ~30% of users first seen anonymously.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pipelines.lib.sample_data import vocab
from pipelines.lib.sample_data.records import MS_PER_HOUR, dumps, uuid4_from
from pipelines.lib.sample_data.sampling import pick, weighted

ANONYMOUS_VISITOR_RATE = 0.30  # users first seen as anonymous page views
LEGACY_NUMERIC_ID_RATE = 0.0025  # users with an old numeric id, sent as a JSON number
ADMIN_RATE = 0.004  # plus the first three users, who are always internal admins
FORCED_ADMINS = 3
MALFORMED_EMAIL_RATE = 0.01

TIMEZONE_TABLE = weighted(vocab.TIMEZONES, 2)
_DOMAINS = weighted(vocab.EMAIL_DOMAINS)
_SERVER_CONTEXT = dumps({"library": vocab.SERVER_LIBRARY})


@dataclass(frozen=True)
class UserProfile:
    user_id: str
    numeric_id: int | None
    anonymous_id: str | None
    email: str
    name: str
    timezone: str  # as the user typed it (may be invalid)
    offset_ms: int  # of the device time zone, for the hour-of-day shape
    is_admin: bool
    browser_context: str
    server_context: str
    project_ids: tuple[str, ...]


def user_id_for(index: int, seed: int) -> str:
    """The user's string id: unique per index within a seed."""
    # An odd multiplier mod 2**32 is a bijection, so ids are unique yet look random.
    return f"usr_{(index * 2654435761 + seed * 40503) & 0xFFFFFFFF:08x}"


def _email(rng: random.Random, index: int, first: str, last: str, admin: bool) -> str:
    f = _ascii(first)
    la = _ascii(last)
    style = rng.random()
    if style < 0.45:
        local = f"{f}.{la}"
    elif style < 0.7:
        local = f"{f}{la[0]}"
    elif style < 0.85:
        local = f"{f[0]}.{la}"
    else:
        local = f"{f}_{la}"
    # The index suffix keeps emails unique (a local part never ends in a digit).
    local = f"{local}{index}"
    domain = vocab.ADMIN_EMAIL_DOMAIN if admin else pick(rng, *_DOMAINS)[0]
    if rng.random() < MALFORMED_EMAIL_RATE and not admin:
        fault = rng.randrange(4)
        if fault == 0:
            return f"{local}{domain}"  # the @ got lost
        if fault == 1:
            return f"{local}@"  # no domain
        if fault == 2:
            return f"{local}@@{domain}"
        return f"{f} {la}{index}@{domain}"  # space in the local part
    return f"{local}@{domain}"


def make_profile(rng: random.Random, index: int, seed: int) -> UserProfile:
    """Who the user is: ids, traits, device. Draws from `rng` in a fixed order."""
    tz_name, offset_h, _, locale = pick(rng, *TIMEZONE_TABLE)
    typed_tz = tz_name
    if rng.random() < vocab.INVALID_TIMEZONE_RATE:
        typed_tz = rng.choice(vocab.INVALID_TIMEZONES)
    first = rng.choice(vocab.FIRST_NAMES)
    last = rng.choice(vocab.LAST_NAMES)
    is_admin = index < FORCED_ADMINS or rng.random() < ADMIN_RATE
    numeric = rng.random() < LEGACY_NUMERIC_ID_RATE
    numeric_id = 1_000_000 + index if numeric else None
    user_id = str(numeric_id) if numeric_id is not None else user_id_for(index, seed)
    anonymous_id = uuid4_from(rng) if rng.random() < ANONYMOUS_VISITOR_RATE else None
    ip = rng.choice(vocab.IP_PREFIXES) + str(rng.randrange(1, 255))
    browser_context = dumps(
        {
            "library": vocab.BROWSER_LIBRARY,
            "ip": ip,
            "userAgent": rng.choice(vocab.USER_AGENTS),
            "locale": locale,
            "timezone": tz_name,
        }
    )
    project_ids = tuple(f"prj_{rng.getrandbits(32):08x}" for _ in range(rng.randint(1, 4)))
    return UserProfile(
        user_id=user_id,
        numeric_id=numeric_id,
        anonymous_id=anonymous_id,
        email=_email(rng, index, first, last, is_admin),
        name=f"{first} {last}",
        timezone=typed_tz,
        offset_ms=int(offset_h * MS_PER_HOUR),
        is_admin=is_admin,
        browser_context=browser_context,
        server_context=_SERVER_CONTEXT,
        project_ids=project_ids,
    )


_ASCII_FOLD = str.maketrans(
    {"é": "e", "è": "e", "ë": "e", "ø": "o", "ö": "o", "ó": "o", "ã": "a", "á": "a",
     "í": "i", "ü": "u", "ç": "c", "ñ": "n", "š": "s", "'": "", "-": ""}
)  # fmt: skip


def _ascii(name: str) -> str:
    """An email-safe lower-case form of a name (José → jose, O'Brien → obrien)."""
    return name.lower().translate(_ASCII_FOLD).replace(" ", "")
