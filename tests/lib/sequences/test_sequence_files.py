"""The committed sequences and templates are valid, and the models enforce the contract."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import jinja2
import pytest
from pydantic import ValidationError

from pipelines.lib.sequences import (
    SEGMENTS,
    TEMPLATE_PARTS,
    Audience,
    Step,
    check_sequences,
    known_columns,
    load_sequences,
    template_files,
)
from pipelines.lib.settings import PROJECT_ROOT

SEQUENCES = PROJECT_ROOT / "sequences"
DBT_PROJECT = PROJECT_ROOT / "dbt_project"
FLAG_KEYS = {
    "onboarding_momentum",
    "nurture_never_started",
    "nurture_stalled",
    "nurture_dormant",
    "nurture_declining",
    "nurture_lapsed",
    "messaging",
}


def test_committed_sequences_pass_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(PROJECT_ROOT)
    problems = check_sequences(
        Path("sequences"),
        flag_keys=FLAG_KEYS,
        columns=known_columns(Path("dbt_project")),
        segments=set(SEGMENTS),
    )
    assert problems == []


def test_committed_sequences_cover_onboarding_and_every_segment() -> None:
    sequences = load_sequences(SEQUENCES)
    by_id = {sequence.id: sequence for sequence in sequences}
    assert [s.priority for s in sequences] == sorted(s.priority for s in sequences)
    assert {s.audience.segment for s in sequences if s.audience.segment} == set(SEGMENTS)
    assert {s.flag for s in sequences} | {"messaging"} == FLAG_KEYS

    onboarding = by_id["onboarding_momentum"]
    assert onboarding.priority == 10
    assert onboarding.audience.condition == "steps_completed < 4"
    assert [step.id for step in onboarding.steps] == [
        "welcome",
        "offer_step_2",
        "offer_step_3",
        "offer_step_4",
    ]
    assert all(step.after == timedelta(0) for step in onboarding.steps)
    assert onboarding.source_file.endswith("onboarding.yaml")
    for sequence in sequences:
        assert 1 <= len(sequence.steps) <= 4
        assert 0 <= sequence.holdout_percent <= 50


def test_known_columns_come_from_both_marts() -> None:
    columns = known_columns(DBT_PROJECT)
    assert {"steps_completed", "signed_up_at", "nurture_segment"} <= columns  # dim_users
    assert {"next_step_name", "current_streak_days", "progress_percentile"} <= columns
    assert "qualified_at" not in columns  # user_segments is not a condition table


def test_known_columns_fails_loudly_without_the_models(tmp_path: Path) -> None:
    (tmp_path / "models" / "marts").mkdir(parents=True)
    with pytest.raises(ValueError, match="dim_users"):
        known_columns(tmp_path)


# The renderer's environment (strict undefined, trim_blocks) with edge-case users: no name,
# nothing done, everything done, an unknown next step name.
USERS = [
    {
        "first_name": "Ada",
        "name": "Ada Lovelace",
        "steps_completed": 2,
        "next_step_name": "Teammate Invited",
        "percent_complete": 50.0,
        "current_streak_days": 3,
        "active_days_last_7": 4,
    },
    {
        "first_name": None,
        "name": None,
        "steps_completed": 0,
        "next_step_name": None,
        "percent_complete": 0,
        "current_streak_days": 0,
        "active_days_last_7": 0,
    },
    {
        "first_name": "Bo",
        "name": "Bo",
        "steps_completed": 4,
        "next_step_name": "Renamed Step",
        "percent_complete": 100.0,
        "current_streak_days": 1,
        "active_days_last_7": 1,
    },
]


@pytest.mark.parametrize("user", USERS, ids=["named", "anonymous", "odd"])
def test_every_template_renders(user: dict) -> None:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(SEQUENCES / "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=lambda name: bool(name) and name.endswith(".html.j2"),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    templates = {step.template for s in load_sequences(SEQUENCES) for step in s.steps}
    assert len(templates) == 15  # 4 onboarding + 3 stalled + 2 per other segment
    for template in sorted(templates):
        for part, path in template_files(SEQUENCES, template).items():
            name = path.relative_to(SEQUENCES / "templates").as_posix()
            text = environment.get_template(name).render(user=user, app_url="https://app.test")
            assert text.strip(), name
            assert "None" not in text, name
            if part == "subject":
                assert "\n" not in text.strip(), name
            else:
                # Greeting falls back when the name is missing; links stay absolute.
                assert f"Hi {user['first_name'] or 'there'}," in text, name
                assert "https://app.test" in text, name
            if part == "html":
                assert "<html" not in text and "unsubscribe_url" not in text, name
            if part == "txt":
                assert "<" not in text and "&#" not in text, name
                assert "\n\n\n" not in text, name
    assert set(TEMPLATE_PARTS) == {"subject", "html", "txt"}


def test_step_after_parses_durations_and_refuses_bare_numbers() -> None:
    step = Step.model_validate({"id": "a", "after": "90m", "template": "x/a"})
    assert step.after == timedelta(minutes=90)
    assert Step.model_validate({"id": "a", "after": "7d", "template": "x/a"}).after == timedelta(
        days=7
    )
    for bad in (72, "72", "3w", "h", "-1h"):
        with pytest.raises(ValidationError, match="duration like"):
            Step.model_validate({"id": "a", "after": bad, "template": "x/a"})


def test_audience_needs_exactly_one_of_segment_or_condition() -> None:
    assert Audience(segment="stalled").condition is None
    with pytest.raises(ValidationError, match="exactly one"):
        Audience()
    with pytest.raises(ValidationError, match="exactly one"):
        Audience(segment="stalled", condition="steps_completed = 1")
