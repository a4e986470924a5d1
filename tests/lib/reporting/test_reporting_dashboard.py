"""build_dashboard on a small migrated warehouse with hand-made marts."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from plotly.offline import get_plotlyjs

from pipelines.lib.reporting import SECTIONS, build_dashboard
from pipelines.lib.reporting.dashboard import NO_EXPERIMENTS, SAMPLE_DATA_NOTE, experiment_fields

AS_OF = datetime(2026, 3, 10, 12, tzinfo=UTC)


def _add_marts(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists marts")
    con.execute(
        """
        create table marts.kpi_daily as
        select cast(d as date) as date, 10 as signups, 0.30 as onboarding_conversion_rate,
               0.50 as onboarding_completion_rate, 0.70 as inactivity_rate, 40 as active_users
        from range(date '2026-03-01', date '2026-03-11', interval 1 day) t(d)
        """
    )
    con.execute(
        """
        create table marts.fct_onboarding_funnel as select * from (values
            (0, 'Signed Up', 100, 1.0, null, 0.0),
            (1, 'Profile Completed', 60, 0.6, 0.6, 3.5)
        ) t(step_number, step_name, users_reached, pct_of_signups, pct_of_previous_step,
            median_hours_from_signup)
        """
    )
    con.execute(
        """
        create table marts.user_segments as select * from (values
            ('u1', 'stalled', timestamptz '2026-03-02 10:00:00+00'),
            ('u2', 'stalled', timestamptz '2026-03-04 10:00:00+00'),
            ('u3', 'lapsed', timestamptz '2026-03-05 10:00:00+00')
        ) t(user_id, segment, qualified_at)
        """
    )
    con.execute(
        """
        insert into messaging.sends (send_id, user_id, email, sequence_id, step_id, template,
            enrollment_key, status, status_reason, variant, flag_key, flag_state, flag_reason,
            last_error, due_at, plan_id, planned_at, sent_at, updated_at)
        select 's' || i, 'u' || i, 'u' || i || '@example.com', 'onboarding_momentum', 'step_1',
               'tpl', timestamptz '2026-03-02 00:00:00+00',
               case when i % 3 = 0 then 'failed' when i % 3 = 1 then 'sent' else 'held_out' end,
               case when i % 3 = 0 then 'provider_error' end,
               case when i % 3 = 2 then 'holdout' else 'treatment' end,
               'onboarding_momentum', 'on', 'on', null, timestamptz '2026-03-02 00:00:00+00',
               'p1', timestamptz '2026-03-02 00:00:00+00', null, current_timestamp
        from range(9) t(i)
        """
    )
    con.execute(
        "insert into messaging.suppressions values"
        " ('a@example.com', 'u1', 'bounce', 'webhook', timestamptz '2026-03-03 00:00:00+00')"
    )
    con.execute(
        "insert into raw.events_rejected values"
        " ('f.jsonl', 3, '{', 'invalid_json', 'bad', timestamptz '2026-03-03 00:00:00+00')"
    )
    con.execute(
        "insert into raw.ingested_files values ('f.jsonl', 'abc', 'jsonl', 10, 5, 4, 1, 0,"
        " timestamptz '2026-03-10 06:00:00+00')"
    )


@pytest.fixture
def built(warehouse: duckdb.DuckDBPyConnection, data_dir: Path):
    _add_marts(warehouse)
    out = data_dir / "reports" / "dashboard.html"
    result = build_dashboard(warehouse, env="dev", out_path=out, as_of=AS_OF)
    return result, out.read_text(encoding="utf-8")


def _without_plotlyjs(text: str) -> str:
    return text.replace(get_plotlyjs(), "")


def test_writes_one_file_with_every_section(built, data_dir: Path) -> None:
    result, text = built
    assert result.path == data_dir / "reports" / "dashboard.html"
    assert [p.name for p in (data_dir / "reports").iterdir()] == ["dashboard.html"]
    assert result.sections == list(SECTIONS)
    for title in SECTIONS:
        assert f"<h2>{title}</h2>" in text
    assert result.kpis == {
        "onboarding_conversion_rate": pytest.approx(0.30),
        "onboarding_completion_rate": pytest.approx(0.50),
        "inactivity_rate": pytest.approx(0.70),
    }
    assert result.charts >= 8
    assert text.count('class="plotly-graph-div"') == result.charts


def test_self_contained_with_plotly_js_once(built) -> None:
    _, text = built
    assert text.count(get_plotlyjs()) == 1
    rest = _without_plotlyjs(text)
    assert "<script src" not in rest.lower()
    assert "cdn." not in rest
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", rest, re.IGNORECASE)
    assert "@import" not in rest and "url(" not in rest
    assert "plotly.js v" not in rest  # no second copy of the bundle


def test_missing_experiment_mart_says_so(built) -> None:
    result, text = built
    assert result.experiments is None
    assert NO_EXPERIMENTS in text


def test_dev_footer_marks_sample_data(built, warehouse, data_dir: Path) -> None:
    _, text = built
    assert SAMPLE_DATA_NOTE in text
    out = data_dir / "reports" / "prod.html"
    build_dashboard(warehouse, env="prod", out_path=out, as_of=AS_OF)
    assert SAMPLE_DATA_NOTE not in out.read_text(encoding="utf-8")


def test_sections_show_ledger_health_and_freshness(built) -> None:
    _, text = built
    assert "provider_error" in text  # failures by reason
    assert "bounce" in text  # suppressions by reason
    assert "invalid_json" in text  # rejected events
    assert "6.0 h before as_of" in text  # last ingestion 06:00, as_of 12:00
    assert "onboarding_momentum" in text
    assert "(this environment)" in text  # flags table marks dev


def test_experiment_mart_when_present(warehouse, data_dir: Path) -> None:
    _add_marts(warehouse)
    warehouse.execute(
        """
        create table marts.fct_sequence_experiments as select * from (values
            ('onboarding_momentum', 0.05, 0.01, 0.09, 0.02, false),
            ('nurture_stalled', 0.01, -0.03, 0.05, 0.6, true)
        ) t(sequence_id, absolute_lift, ci_low, ci_high, p_value, srm_flag)
        """
    )
    out = data_dir / "reports" / "dashboard.html"
    result = build_dashboard(warehouse, env="dev", out_path=out, as_of=AS_OF)
    text = out.read_text(encoding="utf-8")
    assert NO_EXPERIMENTS not in text
    assert result.experiments is not None and len(result.experiments) == 2
    assert "Sample ratio mismatch" in text and "nurture_stalled" in text
    assert "Lift vs holdout with 95% interval" in text


def test_empty_warehouse_still_renders(warehouse, data_dir: Path) -> None:
    out = data_dir / "reports" / "dashboard.html"
    result = build_dashboard(warehouse, env="staging", out_path=out, as_of=AS_OF)
    text = out.read_text(encoding="utf-8")
    assert all(f"<h2>{title}</h2>" in text for title in SECTIONS)
    assert result.kpis == dict.fromkeys(result.kpis)
    assert "no KPI rows yet" in text


def test_experiment_fields_recognises_common_names() -> None:
    fields = experiment_fields(["sequence_id", "lift_ci_lower", "lift_ci_upper", "absolute_lift"])
    assert fields == {
        "label": "sequence_id",
        "lift": "absolute_lift",
        "ci_low": "lift_ci_lower",
        "ci_high": "lift_ci_upper",
        "srm": None,
    }
