"""fct_sequence_experiments' statistics against scipy on fixed counts .

One tmp warehouse: hand-made ledger rows in messaging.sends and events that make chosen users
reach the goal, then `dbt build`. Newcombe's hybrid score interval (method 10) and the pooled
two-proportion z-test are written out here with scipy.stats.norm; SRM uses scipy's chisquare.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, timedelta

import pytest
from scipy.stats import chisquare, norm

from pipelines.lib.warehouse import open_warehouse
from tests.dbt.conftest import DbtWarehouse

ENROLLED_AT = datetime(2026, 11, 1, tzinfo=UTC)
AS_OF = "2026-11-24T12:00:00+00:00"
# sequence -> (treatment users, treatment converted, holdout users, holdout converted)
COUNTS = {
    "exp_balanced": (900, 180, 100, 12),  # the 90/10 design as designed
    "exp_skewed": (600, 150, 400, 80),  # a 60/40 split of a 90/10 design: SRM
}
GOALS = {sequence: {"goal": "onboarding_started", "within_days": 7} for sequence in COUNTS}
HOLDOUT_PERCENT = dict.fromkeys(COUNTS, 10)


def newcombe_interval(x_t: int, n_t: int, x_h: int, n_h: int) -> tuple[float, float]:
    z = norm.ppf(0.975)

    def wilson(x: int, n: int) -> tuple[float, float]:
        p = x / n
        center = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return center - half, center + half

    p_t, p_h = x_t / n_t, x_h / n_h
    (l_t, u_t), (l_h, u_h) = wilson(x_t, n_t), wilson(x_h, n_h)
    d = p_t - p_h
    return d - math.hypot(p_t - l_t, u_h - p_h), d + math.hypot(u_t - p_t, p_h - l_h)


def pooled_z_test(x_t: int, n_t: int, x_h: int, n_h: int) -> tuple[float, float]:
    pooled = (x_t + x_h) / (n_t + n_h)
    z = (x_t / n_t - x_h / n_h) / math.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_h))
    return z, 2 * norm.sf(abs(z))


def ledger_and_events() -> tuple[list[tuple], list[tuple]]:
    sends, events = [], []
    for sequence, (n_t, x_t, n_h, x_h) in COUNTS.items():
        arms = [("treatment", n_t, x_t), ("holdout", n_h, x_h)]
        for variant, users, converted in arms:
            for i in range(users):
                user = f"{sequence}-{variant}-{i}"
                send_id = hashlib.md5(f"{user}|{sequence}|s1|{ENROLLED_AT}".encode()).hexdigest()
                status = "sent" if variant == "treatment" else "held_out"
                sends.append((send_id, user, sequence, variant, status))
                signup = ENROLLED_AT - timedelta(days=1)
                events.append((f"{user}-signup", user, "Signed Up", signup))
                if i < converted:  # the first step 3 days after enrolling: inside 7 d
                    step_at = ENROLLED_AT + timedelta(days=3)
                    events.append((f"{user}-step", user, "Profile Completed", step_at))
                elif i == converted:  # one more user, one second too late: not converted
                    late = ENROLLED_AT + timedelta(days=7, seconds=1)
                    events.append((f"{user}-late", user, "Profile Completed", late))
    return sends, events


@pytest.fixture(scope="module")
def experiments(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    warehouse = DbtWarehouse(tmp_path_factory.mktemp("dbt_experiments"))
    sends, events = ledger_and_events()
    with open_warehouse(warehouse.path) as con:
        con.executemany(
            """
            insert into messaging.sends (
                send_id, user_id, sequence_id, step_id, template, enrollment_key, status,
                variant, flag_key, flag_state, flag_reason, due_at, plan_id, planned_at,
                sent_at, updated_at
            ) values (?, ?, ?, 's1', 't', ?, ?, ?, 'f', 'on', 'test', ?, 'p1', ?,
                      case when ? = 'sent' then cast(? as timestamptz) end, ?)
            """,
            [
                (send_id, user, sequence, ENROLLED_AT, status, variant, ENROLLED_AT,
                 ENROLLED_AT, status, ENROLLED_AT, ENROLLED_AT)
                for send_id, user, sequence, variant, status in sends
            ],
        )  # fmt: skip
        con.executemany(
            """
            insert into raw.events (
                event_id, event_type, event_name, user_id, occurred_at, received_at,
                source_file, ingested_at
            ) values (?, 'track', ?, ?, ?, ?, 'tests/dbt/test_experiments.py', ?)
            """,
            [(eid, name, user, at, at, at) for eid, user, name, at in events],
        )
    warehouse.dbt(
        "build",
        as_of=AS_OF,
        extra_vars={"sequence_goals": GOALS, "holdout_percent_by_sequence": HOLDOUT_PERCENT},
    )  # fmt: skip
    rows = warehouse.query("select * from marts.fct_sequence_experiments")
    return {row["sequence_id"]: row for row in rows}


EXPECTED_COUNTS = {
    **COUNTS,
    "__overall__": tuple(sum(values) for values in zip(*COUNTS.values(), strict=True)),
}


@pytest.mark.parametrize("sequence", sorted(EXPECTED_COUNTS))
def test_counts_are_intention_to_treat(experiments, sequence):
    row = experiments[sequence]
    n_t, x_t, n_h, x_h = EXPECTED_COUNTS[sequence]
    assert (row["treatment_users"], row["treatment_converted"]) == (n_t, x_t)
    assert (row["holdout_users"], row["holdout_converted"]) == (n_h, x_h)
    assert row["treatment_conversion_rate"] == pytest.approx(x_t / n_t, abs=1e-12)
    assert row["holdout_conversion_rate"] == pytest.approx(x_h / n_h, abs=1e-12)
    assert row["absolute_lift"] == pytest.approx(x_t / n_t - x_h / n_h, abs=1e-12)
    assert row["relative_lift"] == pytest.approx((x_t / n_t) / (x_h / n_h) - 1, abs=1e-12)


@pytest.mark.parametrize("sequence", sorted(EXPECTED_COUNTS))
def test_newcombe_interval_and_p_value_match_scipy(experiments, sequence):
    row = experiments[sequence]
    n_t, x_t, n_h, x_h = EXPECTED_COUNTS[sequence]
    lower, upper = newcombe_interval(x_t, n_t, x_h, n_h)
    z, p_value = pooled_z_test(x_t, n_t, x_h, n_h)
    assert row["ci_method"] == "newcombe_hybrid_score"
    assert row["lift_ci_lower"] == pytest.approx(lower, abs=1e-6)
    assert row["lift_ci_upper"] == pytest.approx(upper, abs=1e-6)
    assert row["lift_ci_lower"] < row["absolute_lift"] < row["lift_ci_upper"]
    assert row["z_score"] == pytest.approx(z, abs=1e-6)
    assert row["p_value"] == pytest.approx(p_value, abs=1e-6, rel=1e-6)
    assert row["is_significant"] is bool(p_value < 0.05)


@pytest.mark.parametrize("sequence", sorted(EXPECTED_COUNTS))
def test_srm_matches_scipy_chisquare(experiments, sequence):
    row = experiments[sequence]
    n_t, _, n_h, _ = EXPECTED_COUNTS[sequence]
    n = n_t + n_h
    expected = [n * 0.9, n * 0.1]
    statistic, p_value = chisquare([n_t, n_h], f_exp=expected)
    assert row["holdout_percent"] == pytest.approx(10.0)
    assert row["srm_expected_holdout_users"] == pytest.approx(n * 0.1, abs=1e-9)
    assert row["srm_chi_square"] == pytest.approx(statistic, abs=1e-6)
    assert row["srm_p_value"] == pytest.approx(p_value, abs=1e-6, rel=1e-6)


def test_srm_flags_a_60_40_split_of_a_90_10_design_and_not_a_90_10_one(experiments):
    assert experiments["exp_skewed"]["srm_flag"] is True
    assert experiments["exp_balanced"]["srm_flag"] is False
    assert experiments["__overall__"]["srm_flag"] is True
