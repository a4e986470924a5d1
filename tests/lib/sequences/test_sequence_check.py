"""`check_sequences` on broken copies: every problem as `path:line: message`, at the right line.

Each case copies the committed sequences into tmp_path, breaks one thing by editing text, and
expects exactly one problem, at the line (found by searching the edited file) of the broken key.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipelines.lib.sequences import (
    SEGMENTS,
    SequenceError,
    check_sequences,
    known_columns,
    load_sequences,
)
from pipelines.lib.settings import PROJECT_ROOT

FLAG_KEYS = {
    "onboarding_momentum",
    "nurture_never_started",
    "nurture_stalled",
    "nurture_dormant",
    "nurture_declining",
    "nurture_lapsed",
    "messaging",
}
COLUMNS = known_columns(PROJECT_ROOT / "dbt_project")


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of sequences/ under tmp_path, which is also the working directory."""
    shutil.copytree(PROJECT_ROOT / "sequences", tmp_path / "sequences")
    monkeypatch.chdir(tmp_path)
    return Path("sequences")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} must occur once in {path}"
    path.write_text(text.replace(old, new))


def line_of(path: Path, needle: str) -> int:
    """1-based line of the only line of `path` that contains `needle`."""
    lines = [n for n, line in enumerate(path.read_text().splitlines(True), 1) if needle in line]
    assert len(lines) == 1, f"{needle!r} must be on exactly one line of {path}"
    return lines[0]


def check(folder: Path) -> list[str]:
    return check_sequences(folder, flag_keys=FLAG_KEYS, columns=COLUMNS, segments=set(SEGMENTS))


# (file, old text, new text, text on the line to blame, expected message)
CASES = {
    "typo_column": (
        "stalled.yaml",
        'exit_when: "steps_completed = 4"',
        'exit_when: "step_completed = 4"',
        "exit_when:",
        "exit_when: unknown column 'step_completed'; did you mean 'steps_completed'?",
    ),
    "unknown_template": (
        "never_started.yaml",
        "template: never_started/second_chance",
        "template: never_started/second_chanse",
        "second_chanse",
        "template 'never_started/second_chanse' is missing "
        "sequences/templates/never_started/second_chanse.subject.j2, "
        "sequences/templates/never_started/second_chanse.html.j2, "
        "sequences/templates/never_started/second_chanse.txt.j2",
    ),
    "unknown_flag": (
        "dormant.yaml",
        "flag: nurture_dormant",
        "flag: nurture_dormnt",
        "flag:",
        "unknown flag 'nurture_dormnt'; did you mean 'nurture_dormant'?",
    ),
    "duplicate_sequence_id": (
        "lapsed.yaml",
        "id: lapsed_winback",
        "id: declining_engagement",
        "id: declining_engagement",
        "duplicate sequence id 'declining_engagement' (also in sequences/declining.yaml:{id_line})",
    ),
    "duplicate_step_id": (
        "onboarding.yaml",
        "- id: offer_step_3",
        "- id: offer_step_2 ",
        "- id: offer_step_2 ",
        "duplicate step id 'offer_step_2' (first at line {first_step_line})",
    ),
    "yaml_syntax": (
        "declining.yaml",
        "description: Encourage users",
        "description: Encourage: users",
        "description:",
        "invalid YAML: mapping values are not allowed here",
    ),
    "bad_holdout": (
        "onboarding.yaml",
        "holdout_percent: 10",
        "holdout_percent: 75",
        "holdout_percent:",
        "holdout_percent: Input should be less than or equal to 50 (got 75)",
    ),
    "subquery": (
        "dormant.yaml",
        'condition: "events_last_7d >= 3"',
        'condition: "events_last_7d >= (select max(events_last_7d) from marts.dim_users)"',
        "goal:",
        "goal.condition: subqueries are not allowed in a condition",
    ),
    "disallowed_function": (
        "lapsed.yaml",
        'condition: "not is_inactive"',
        'condition: "not is_inactive and random() < 0.5"',
        "goal:",
        "goal.condition: function 'random' is not allowed (allowed: abs, coalesce, date_diff, "
        "greatest, least, length, lower, nullif, round, upper)",
    ),
    "bad_after": (
        "stalled.yaml",
        "after: 72h",
        "after: 72",
        "after: 72",
        "steps[1].after: must be a duration like 0h, 30m, 72h or 7d (got 72)",
    ),
    "unknown_segment": (
        "stalled.yaml",
        "audience: {segment: stalled}",
        "audience: {segment: staled}",
        "audience:",
        "unknown segment 'staled'; did you mean 'stalled'?",
    ),
    "wall_clock": (
        "never_started.yaml",
        'when: "steps_completed = 0"',
        'when: "steps_completed = 0 and signed_up_at < now()"',
        "now()",
        "steps[1].when: 'now' reads the wall clock, which is not allowed: the marts are "
        "computed as of BIS_AS_OF (use events_last_7d, is_inactive, ... instead)",
    ),
    "duplicate_priority": (
        "lapsed.yaml",
        "priority: 60",
        "priority: 50",
        "priority:",
        "duplicate priority 50 (also in sequences/declining.yaml:{priority_line}); "
        "priorities must be unique so one sequence wins",
    ),
}


def expected(folder: Path, case: tuple[str, str, str, str, str]) -> str:
    file, _, _, needle, message = case
    path = folder / file
    message = message.format(
        id_line=line_of(folder / "declining.yaml", "id: declining_engagement"),
        priority_line=line_of(folder / "declining.yaml", "priority:"),
        # the original offer_step_2, not the renamed offer_step_3 (which has a trailing space)
        first_step_line=line_of(folder / "onboarding.yaml", "- id: offer_step_2\n"),
    )
    return f"{path}:{line_of(path, needle)}: {message}"


@pytest.mark.parametrize("name", CASES)
def test_each_problem_is_reported_at_its_line(folder: Path, name: str) -> None:
    file, old, new, _, _ = CASES[name]
    edit(folder / file, old, new)
    assert check(folder) == [expected(folder, CASES[name])]


def test_all_problems_are_reported_together(folder: Path) -> None:
    # Cases that touch different text, so they can all be applied at once.
    names = [
        "typo_column",
        "unknown_template",
        "unknown_flag",
        "duplicate_step_id",
        "yaml_syntax",
        "subquery",
        "disallowed_function",
    ]
    for name in names:
        file, old, new, _, _ = CASES[name]
        edit(folder / file, old, new)
    # The YAML error hides the rest of declining.yaml, never the other files.
    wanted = [expected(folder, CASES[name]) for name in names]
    # Reading order: file by file, then by line number (numerically, 7 before 10).
    wanted.sort(key=lambda problem: (problem.split(":")[0], int(problem.split(":")[1])))
    assert check(folder) == wanted
    with pytest.raises(SequenceError) as raised:
        load_sequences(folder)
    # The loader knows neither flags nor columns: it reports everything but those two.
    unchecked = {expected(folder, CASES[name]) for name in ("unknown_flag", "typo_column")}
    assert raised.value.errors == [problem for problem in wanted if problem not in unchecked]


HANDWRITTEN = """\
id: tiny
description: A hand-written file, so the expected lines are literal.
audience:
  segment: stalled
flag: nurture_stalled
priority: 99
holdout_percent: 5
goal: {condition: "steps_completed = 4", within_days: 14}
exitwhen: "steps_completed = 4"
steps:
  - id: first
    after: 0h
    template: stalled/nudge_1
  - after: 1d
    template: stalled/nudge_2
    when: "steps_completed between 1 and 3"
"""


def test_unknown_and_missing_fields_point_at_their_lines(folder: Path) -> None:
    (folder / "tiny.yaml").write_text(HANDWRITTEN)
    assert check(folder) == [
        # the misspelt key's own line, with the nearest field name
        "sequences/tiny.yaml:9: unknown field 'exitwhen'; did you mean 'exit_when'?",
        # a missing key has no line: the step that lacks it is blamed
        "sequences/tiny.yaml:14: missing required field 'steps[1].id'",
    ]


def test_duplicate_yaml_keys_are_reported(folder: Path) -> None:
    (folder / "tiny.yaml").write_text(HANDWRITTEN.replace("exitwhen", "priority"))
    assert check(folder) == [
        "sequences/tiny.yaml:9: duplicate key 'priority'",
        # the last value wins in YAML, so the later line is the one that fails validation
        "sequences/tiny.yaml:9: priority: Input should be a valid integer "
        "(got 'steps_completed = 4')",
        "sequences/tiny.yaml:14: missing required field 'steps[1].id'",
    ]


def test_template_contents_are_checked(folder: Path) -> None:
    html = folder / "templates" / "stalled" / "nudge_1.html.j2"
    html.write_text(html.read_text().replace("user.percent_complete", "user.percent", 1))
    text = folder / "templates" / "stalled" / "nudge_2.txt.j2"
    text.write_text("Hi {{ user.first_name }},\n\n{% if user.steps_completed %}\nunclosed\n")
    subject = folder / "templates" / "stalled" / "offer_help.subject.j2"
    subject.write_text("Line one\nline two\n")
    assert check(folder) == [
        f"{html}:{line_of(html, 'user.percent or')}: unknown field 'user.percent'; "
        "did you mean 'user.percent_complete'?",
        # Jinja's line for an unclosed block: the line of the block that is left open
        f"{text}:3: template syntax error: Unexpected end of template. Jinja was looking for "
        "the following tags: 'elif' or 'else' or 'endif'. The innermost block that needs to be "
        "closed is 'if'.",
        f"{subject}:2: a subject template must be a single line",
    ]


def test_paths_outside_the_working_directory_are_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(PROJECT_ROOT / "sequences", tmp_path / "copy")
    edit(tmp_path / "copy" / "dormant.yaml", "flag: nurture_dormant", "flag: nope")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    [problem] = check(tmp_path / "copy")
    assert problem.startswith(f"{tmp_path / 'copy' / 'dormant.yaml'}:")


def test_an_empty_folder_is_a_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    assert check(Path("empty")) == ["empty:1: no sequence files (*.yaml) found"]
    assert load_sequences(Path("empty")) == []
