"""Unleash gradual-rollout bucketing against the client-specification vectors."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from pipelines.lib.flags import unleash_bucket, unleash_buckets

# Unleash client-specification, gradual rollout normalisation: (group, id, expected bucket).
GOLDEN = [
    ("Feature.flexibleRollout.10", "174", 10),
    ("Feature.flexibleRollout.10", "499", 32),
    ("Feature.flexibleRollout.userId.55", "25", 55),
    ("Feature.flexibleRollout.sessionId.42", "147", 42),
]


@pytest.mark.parametrize(("group", "user_id", "expected"), GOLDEN)
def test_matches_unleash_client_specification(group: str, user_id: str, expected: int) -> None:
    assert unleash_bucket(group, user_id) == expected


def test_order_of_group_and_id_matters() -> None:
    # Guards against hashing "id:group": that gives 20 for the first vector, not 10.
    assert unleash_bucket("174", "Feature.flexibleRollout.10") != 10


def test_many_matches_one_at_a_time() -> None:
    ids = [f"usr_{n:08x}" for n in range(2_000)] + ["", "174", "ünïcode", "a:b"]
    assert unleash_buckets("nurture_stalled", ids) == [
        unleash_bucket("nurture_stalled", user_id) for user_id in ids
    ]


def test_buckets_are_1_to_100_and_roughly_uniform() -> None:
    rng = random.Random(7)
    ids = [str(rng.getrandbits(64)) for _ in range(50_000)]
    counts = Counter(unleash_buckets("messaging", ids))
    assert set(counts) == set(range(1, 101))
    # 500 expected per bucket; +-30% is far outside binomial noise (sd ~22).
    assert all(350 < count < 650 for count in counts.values())


def test_different_flags_pick_different_users() -> None:
    ids = [f"u{n}" for n in range(10_000)]
    first = {u for u, b in zip(ids, unleash_buckets("nurture_stalled", ids), strict=True) if b <= 5}
    second = {u for u, b in zip(ids, unleash_buckets("nurture_lapsed", ids), strict=True) if b <= 5}
    # Independent 5% slices overlap in about 0.25% of users, not 5%.
    assert len(first & second) < 100
