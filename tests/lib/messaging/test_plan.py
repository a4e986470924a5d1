"""The planner's decisions, one behaviour per test (docs/architecture.md §6-§8)."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest

from pipelines.lib.flags import EnvSetting
from pipelines.lib.messaging.plan import plan_messages
from tests.lib.messaging.conftest import T, add_user

ON = EnvSetting(state="on", percent=None)


def plan(ledger, sequences, flags, *, as_of=T, overrides=None, plan_id="p1", **kwargs):
    return plan_messages(
        ledger,
        sequences=sequences,
        flags=flags,
        env="dev",
        as_of=as_of,
        plan_id=plan_id,
        flag_overrides=overrides,
        **kwargs,
    )


def statuses(ledger) -> dict[str, tuple[str, str, str]]:
    rows = ledger.execute(
        "select user_id, sequence_id || '/' || step_id, status, status_reason"
        " from messaging.sends order by user_id, sequence_id, step_id"
    ).fetchall()
    return {f"{u}:{step}": (status, reason, step) for u, step, status, reason in rows}


def test_replanning_the_same_moment_changes_nothing(ledger, test_sequences, flags) -> None:
    add_user(ledger, "u1", steps=1, segment="stalled")
    first = plan(ledger, test_sequences, flags, plan_id="p1")
    before = ledger.execute("select * from messaging.sends order by send_id").fetchall()
    second = plan(ledger, test_sequences, flags, plan_id="p2")
    after = ledger.execute(
        "select send_id, status, status_reason, variant, planned_at from messaging.sends"
        " order by send_id"
    ).fetchall()
    assert first.total("planned") == 1
    assert second.total("planned") == 0
    assert len(after) == len(before) == 1


def test_priority_decides_between_sequences(ledger, test_sequences, flags) -> None:
    add_user(ledger, "u1", steps=1, segment="stalled")
    plan(ledger, test_sequences, flags)
    assert list(statuses(ledger)) == ["u1:nudge_a/first"]


def test_frequency_cap_spans_sequences(ledger, test_sequences, flags) -> None:
    add_user(ledger, "u1", steps=1, segment="stalled")
    plan(ledger, test_sequences, flags, as_of=T - timedelta(hours=2))
    ledger.execute(
        "update messaging.sends set status = 'sent', sent_at = ?", [T - timedelta(hours=2)]
    )
    # nudge_a's next step is not due for 48 h, so nudge_b is next in line: capped at 1/24 h.
    result = plan(ledger, test_sequences, flags, plan_id="p2")
    assert result.decisions == {("nudge_b", "capped"): 1}
    status, reason, _ = statuses(ledger)["u1:nudge_b/only"]
    assert status == "capped" and "1 in 24h (max 1)" in reason
    # A day later the cap has room again and the capped row is re-decided.
    plan(ledger, test_sequences, flags, as_of=T + timedelta(hours=23), plan_id="p3")
    assert statuses(ledger)["u1:nudge_b/only"][0] == "planned"


def test_quiet_hours_in_the_users_timezone(ledger, test_sequences, flags) -> None:
    add_user(ledger, "tokyo", steps=1, segment="stalled", timezone="Asia/Tokyo")  # 00:00
    add_user(ledger, "paris", steps=1, segment="stalled", timezone="Europe/Paris")  # 16:00
    add_user(ledger, "nowhere", steps=1, segment="stalled", valid_timezone=False)  # UTC 15:00
    result = plan(ledger, test_sequences, flags)
    got = {key.split(":")[0]: value[0] for key, value in statuses(ledger).items()}
    assert got == {"tokyo": "deferred", "paris": "planned", "nowhere": "planned"}
    assert "quiet hours: 00:00 in Asia/Tokyo" in statuses(ledger)["tokyo:nudge_a/first"][1]
    assert result.invalid_timezones == 1
    # Morning in Tokyo: the deferred row is re-decided and planned.
    plan(ledger, test_sequences, flags, as_of=T + timedelta(hours=9), plan_id="p2")
    assert statuses(ledger)["tokyo:nudge_a/first"][0] == "planned"


def test_suppressed_addresses_and_bad_emails_are_not_planned(ledger, test_sequences, flags) -> None:
    add_user(ledger, "u1", steps=1, segment="stalled")
    add_user(ledger, "u2", steps=1, segment="stalled", email="not-an-email")
    ledger.execute(
        "insert into messaging.suppressions values"
        " ('U1@example.com', null, 'unsubscribe', 'test', ?)",
        [T],
    )
    plan(ledger, test_sequences, flags)
    got = statuses(ledger)
    assert got["u1:nudge_a/first"][:2] == ("suppressed", "suppressed: unsubscribe")
    assert got["u2:nudge_a/first"][:2] == ("suppressed", "suppressed: no valid email address")


def test_holdout_is_deterministic_and_near_its_percent(ledger, test_sequences, flags) -> None:
    sequences = [s.model_copy(update={"holdout_percent": 30.0}) for s in test_sequences]
    for i in range(400):
        add_user(ledger, f"u{i:03d}", steps=1, segment="stalled")
    plan(ledger, sequences, flags)
    held = {
        r[0]
        for r in ledger.execute(
            "select user_id from messaging.sends where variant = 'holdout'"
        ).fetchall()
    }
    statuses_of_held = {
        r[0]
        for r in ledger.execute(
            "select distinct status from messaging.sends where variant = 'holdout'"
        ).fetchall()
    }
    assert statuses_of_held == {"held_out"}
    assert 0.22 < len(held) / 400 < 0.38
    # Same users, fresh ledger: exactly the same holdout group.
    ledger.execute("delete from messaging.sends")
    plan(ledger, sequences, flags, plan_id="p2")
    again = {
        r[0]
        for r in ledger.execute(
            "select user_id from messaging.sends where variant = 'holdout'"
        ).fetchall()
    }
    assert again == held


def test_flag_off_enrolls_nobody_and_cancels_open_rows(ledger, test_sequences, flags) -> None:
    add_user(ledger, "u1", steps=1, segment="stalled")
    plan(ledger, test_sequences, flags)
    off = {
        "nurture_stalled": EnvSetting(state="off", percent=None),
        "nurture_dormant": EnvSetting(state="off", percent=None),
    }
    result = plan(ledger, test_sequences, flags, overrides=off, plan_id="p2")
    assert result.total("planned") == 0
    assert sum(result.not_enrolled.values()) == 2  # one user, two sequences
    status, reason, _ = statuses(ledger)["u1:nudge_a/first"]
    assert status == "cancelled" and reason.startswith("flag nurture_stalled")


def test_admins_state_reaches_only_admins(ledger, test_sequences, flags) -> None:
    add_user(ledger, "admin", steps=1, segment="stalled", is_admin=True)
    add_user(ledger, "user", steps=1, segment="stalled")
    admins = {
        "nurture_stalled": EnvSetting(state="admins", percent=None),
        "nurture_dormant": EnvSetting(state="off", percent=None),
    }
    plan(ledger, test_sequences, flags, overrides=admins)
    assert list(statuses(ledger)) == ["admin:nudge_a/first"]


def test_rollout_only_ever_adds_users(ledger, test_sequences, flags) -> None:
    for i in range(300):
        add_user(ledger, f"u{i:03d}", steps=1, segment="stalled")
    reached: list[set[str]] = []
    for percent in (5, 25, 50, 100):
        ledger.execute("delete from messaging.sends")
        setting = {
            "nurture_stalled": EnvSetting(state="rollout", percent=percent),
            "nurture_dormant": EnvSetting(state="off", percent=None),
        }
        plan(ledger, test_sequences, flags, overrides=setting, plan_id=f"p{percent}")
        reached.append(
            {r[0] for r in ledger.execute("select user_id from messaging.sends").fetchall()}
        )
    assert [len(r) for r in reached][-1] == 300
    for smaller, larger in itertools.pairwise(reached):
        assert smaller <= larger
    assert 0 < len(reached[0]) < len(reached[1]) < len(reached[2]) < 300


def test_kill_switch_stops_everything(ledger, test_sequences, flags) -> None:
    add_user(ledger, "u1", steps=1, segment="stalled")
    killed = {"messaging": EnvSetting(state="off", percent=None)}
    result = plan(ledger, test_sequences, flags, overrides=killed)
    assert result.decisions == {} and statuses(ledger) == {}
    assert all(
        reason.startswith("messaging") or "messaging" in reason
        for (_, reason) in result.not_enrolled
    )


def test_exit_condition_cancels_a_waiting_row(ledger, test_sequences, flags) -> None:
    add_user(ledger, "tokyo", steps=1, segment="stalled", timezone="Asia/Tokyo")
    plan(ledger, test_sequences, flags)
    assert statuses(ledger)["tokyo:nudge_a/first"][0] == "deferred"
    ledger.execute("update marts.dim_users set steps_completed = 4")
    ledger.execute("update marts.user_segments set segment = 'dormant'")
    plan(ledger, test_sequences, flags, plan_id="p2")
    status, reason, _ = statuses(ledger)["tokyo:nudge_a/first"]
    assert status == "cancelled" and "no longer due" in reason


def test_later_steps_wait_for_their_delay(ledger, test_sequences, flags) -> None:
    add_user(ledger, "u1", steps=1, segment="stalled", qualified_at=T - timedelta(hours=1))
    plan(ledger, test_sequences, flags)
    ledger.execute("update messaging.sends set status = 'sent', sent_at = ?", [T])
    plan(ledger, test_sequences, flags, as_of=T + timedelta(hours=30), plan_id="p2")
    assert "u1:nudge_a/second" not in statuses(ledger)
    plan(ledger, test_sequences, flags, as_of=T + timedelta(hours=48), plan_id="p3")
    assert statuses(ledger)["u1:nudge_a/second"][0] == "planned"


@pytest.mark.parametrize("segment", ["dormant", None])
def test_users_outside_the_audience_get_nothing(ledger, test_sequences, flags, segment) -> None:
    add_user(ledger, "u1", steps=1, segment=segment)
    plan(ledger, test_sequences, flags)
    assert statuses(ledger) == {}
