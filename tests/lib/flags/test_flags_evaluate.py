"""Flag decisions: states, admins, and the rollout properties the phased launch relies on."""

from __future__ import annotations

import random

import pytest

from pipelines.lib.flags import Decision, EnvSetting, Flag, evaluate, evaluate_many

ENVS = {"dev": {"state": "on"}, "staging": {"state": "admins"}, "prod": {"state": "off"}}


def make_flag(key: str = "nurture_stalled", admin_user_ids: list[str] | None = None) -> Flag:
    return Flag(
        key=key, description="test flag", admin_user_ids=admin_user_ids or [], environments=ENVS
    )


def rollout(percent: int) -> EnvSetting:
    return EnvSetting(state="rollout", percent=percent)


def enabled_ids(flag: Flag, setting: EnvSetting, ids: list[str]) -> set[str]:
    decisions = evaluate_many(flag, setting, ids, [False] * len(ids))
    return {user_id for user_id, d in zip(ids, decisions, strict=True) if d.enabled}


IDS = [f"usr_{n:08x}" for n in range(10_000)]


def test_off_enables_nobody_not_even_admins() -> None:
    flag = make_flag(admin_user_ids=["u1"])
    off = EnvSetting(state="off")
    assert evaluate(flag, off, user_id="u1", is_admin=True) == Decision(False, "off")
    assert not any(d.enabled for d in evaluate_many(flag, off, IDS, [True] * len(IDS)))


def test_on_enables_everyone() -> None:
    on = EnvSetting(state="on")
    assert evaluate(make_flag(), on, user_id="u1", is_admin=False) == Decision(True, "on")
    assert all(d.enabled for d in evaluate_many(make_flag(), on, IDS, [False] * len(IDS)))


def test_admins_enables_only_admins_and_listed_ids() -> None:
    flag = make_flag(admin_user_ids=["listed"])
    admins = EnvSetting(state="admins")
    users = ["admin", "listed", "someone", "other"]
    is_admin = [True, False, False, False]
    decisions = evaluate_many(flag, admins, users, is_admin)
    assert [d.enabled for d in decisions] == [True, True, False, False]
    assert [d.reason for d in decisions] == ["admin", "admin", "not admin", "not admin"]
    assert evaluate(flag, admins, user_id="someone", is_admin=False) == Decision(False, "not admin")
    assert evaluate(flag, admins, user_id="listed", is_admin=False) == Decision(True, "admin")
    assert evaluate(flag, admins, user_id="admin", is_admin=True) == Decision(True, "admin")


def test_rollout_reason_names_bucket_and_percent() -> None:
    # Golden vector: bucket of "Feature.flexibleRollout.10" for id 174 is 10.
    flag = make_flag().model_copy(update={"key": "Feature.flexibleRollout.10"})
    assert evaluate(flag, rollout(10), user_id="174", is_admin=False) == Decision(
        True, "rollout bucket 10 <= 10"
    )
    assert evaluate(flag, rollout(9), user_id="174", is_admin=True) == Decision(
        False, "rollout bucket 10 > 9"
    )


def test_rollout_edges_zero_and_hundred() -> None:
    flag = make_flag()
    assert enabled_ids(flag, rollout(0), IDS) == set()
    assert enabled_ids(flag, rollout(100), IDS) == set(IDS)


def test_monotonic_property_random_ids_and_percents() -> None:
    # Enabled at p implies enabled at every q > p, for random flags, ids and p < q.
    rng = random.Random(20240601)
    gained = 0
    for _ in range(3_000):
        flag = make_flag(key=f"flag_{rng.randrange(50)}")
        user_id = f"{rng.getrandbits(48):x}"
        p = rng.randrange(0, 100)
        q = rng.randrange(p + 1, 101)
        at_p = evaluate(flag, rollout(p), user_id=user_id, is_admin=False)
        at_q = evaluate(flag, rollout(q), user_id=user_id, is_admin=False)
        assert not at_p.enabled or at_q.enabled, (flag.key, user_id, p, q)
        gained += at_q.enabled and not at_p.enabled
    # Not vacuous: raising the percent does add users (about a third of these draws).
    assert gained > 500


def test_rollout_ladder_reaches_its_share_and_only_adds_users() -> None:
    flag = make_flag()
    previous: set[str] = set()
    for percent in (5, 25, 50, 100):
        reached = enabled_ids(flag, rollout(percent), IDS)
        share = len(reached) / len(IDS) * 100
        assert abs(share - percent) < 2, (percent, share)
        assert previous <= reached, f"{len(previous - reached)} users dropped at {percent}%"
        assert len(reached) > len(previous)
        previous = reached


def test_evaluate_many_matches_evaluate() -> None:
    flag = make_flag(admin_user_ids=[IDS[3]])
    rng = random.Random(3)
    is_admin = [rng.random() < 0.1 for _ in IDS]
    for setting in (
        EnvSetting(state="off"),
        EnvSetting(state="on"),
        EnvSetting(state="admins"),
        rollout(37),
    ):
        one_by_one = [
            evaluate(flag, setting, user_id=u, is_admin=a)
            for u, a in zip(IDS, is_admin, strict=True)
        ]
        assert evaluate_many(flag, setting, IDS, is_admin) == one_by_one


def test_evaluate_many_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="2 user ids but 1"):
        evaluate_many(make_flag(), EnvSetting(state="on"), ["a", "b"], [True])


def test_rollout_ignores_admin_status() -> None:
    # Rollout is exactly `percent` of users; admins are not added on top (docs/architecture.md §7).
    flag = make_flag()
    outside = next(
        u for u in IDS if not evaluate(flag, rollout(5), user_id=u, is_admin=False).enabled
    )
    assert not evaluate(flag, rollout(5), user_id=outside, is_admin=True).enabled
