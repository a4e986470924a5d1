"""Unleash's gradual-rollout bucketing (client-specification "normalizedValue", seed 0).

A user's bucket depends only on the flag key and the user id, so it never changes between
plans: raising a rollout percent only ever adds users, and lowering it removes exactly the
users that raising it added. Keying by flag means each flag reaches a different slice of
users, so the first 5% of every feature are not the same people.
"""

from __future__ import annotations

from collections.abc import Iterable

import mmh3

BUCKETS = 100


def unleash_bucket(flag_key: str, user_id: str) -> int:
    """The user's bucket for this flag, 1..100; enabled in a rollout when bucket <= percent."""
    return mmh3.hash(f"{flag_key}:{user_id}", seed=0, signed=False) % BUCKETS + 1


def unleash_buckets(flag_key: str, user_ids: Iterable[str]) -> list[int]:
    """`unleash_bucket` for many users, without re-looking-up names per user."""
    prefix = f"{flag_key}:"
    hash_ = mmh3.hash
    return [hash_(prefix + user_id, seed=0, signed=False) % BUCKETS + 1 for user_id in user_ids]
