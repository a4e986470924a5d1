"""Sequence files that would expand without bound (alias bombs, cycles, deep nesting, huge
files) are refused while parsing, with the file and line, in bounded memory."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.lib.sequences import SequenceError, known_columns, load_sequences
from pipelines.lib.sequences.yaml_lines import YamlSyntaxError, load_yaml_with_lines
from pipelines.lib.settings import PROJECT_ROOT, SEQUENCES_DIR
from tests.support.yaml_bombs import BOMBS, MEMORY_LIMIT, REFUSAL, measure

NAMES = sorted(BOMBS)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the committed sequences (templates included)."""
    target = tmp_path / "sequences"
    shutil.copytree(SEQUENCES_DIR, target)
    return target


def plant(folder: Path, name: str) -> Path:
    """Append bomb `name` to a real sequence file, as an editor of that file would."""
    path = folder / "stalled.yaml"
    path.write_text(path.read_text() + BOMBS[name])
    return path


@pytest.mark.parametrize("name", NAMES)
def test_load_sequences_refuses_with_file_and_line(folder: Path, name: str) -> None:
    path = plant(folder, name)
    _, error, peak = measure(lambda: load_sequences(folder))
    assert isinstance(error, SequenceError), error
    [message] = error.errors
    assert re.match(rf"{re.escape(str(path))}:\d+: ", message), message
    assert REFUSAL[name] in message and "refused" in message
    assert peak < MEMORY_LIMIT


@pytest.mark.parametrize("name", NAMES)
def test_yaml_lines_refuses_at_the_line_of_the_bomb(name: str) -> None:
    text = "id: bomb\n" + BOMBS[name]
    _, error, peak = measure(lambda: load_yaml_with_lines(text))
    assert isinstance(error, YamlSyntaxError), error
    assert REFUSAL[name] in error.message
    # The line is where the limit was crossed: inside the bomb, never the untouched first line.
    assert error.line >= (1 if name == "oversized" else 2)
    assert peak < MEMORY_LIMIT


@pytest.mark.parametrize("name", NAMES)
def test_bis_sequences_check_reports_the_bomb_and_fails(
    folder: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = plant(folder, name)
    # Memory is measured on the same path in the tests above; here the whole command runs.
    code = main(["sequences", "check", "--folder", str(folder)])
    captured = capsys.readouterr()
    assert code == 1
    [line] = captured.out.splitlines()  # the bomb, once; the other files are fine
    assert re.fullmatch(rf".*{re.escape(path.name)}:\d+: .*{re.escape(REFUSAL[name])}.*", line)
    assert "1 problem(s)" in captured.err


def test_bis_sequences_check_refuses_billion_laughs_in_bounded_memory(folder: Path) -> None:
    plant(folder, "billion_laughs")
    code, error, peak = measure(lambda: main(["sequences", "check", "--folder", str(folder)]))
    assert (code, error) == (1, None)
    assert peak < MEMORY_LIMIT


def test_bis_sequences_check_refuses_a_bomb_in_the_flags_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = tmp_path / "flags.yaml"
    flags.write_text((PROJECT_ROOT / "flags" / "flags.yaml").read_text() + BOMBS["billion_laughs"])
    code, error, peak = measure(lambda: main(["sequences", "check", "--flags", str(flags)]))
    assert (code, error) == (1, None)
    err = capsys.readouterr().err
    assert re.search(rf"{re.escape(str(flags))}:\d+: .*aliases would expand", err), err
    assert peak < MEMORY_LIMIT


def test_mart_column_files_are_read_with_the_same_limits(tmp_path: Path) -> None:
    project = tmp_path / "dbt_project"
    shutil.copytree(PROJECT_ROOT / "dbt_project" / "models" / "marts", project / "models/marts")
    bomb = project / "models" / "marts" / "_bomb.yml"
    bomb.write_text(BOMBS["billion_laughs"])
    _, error, peak = measure(lambda: known_columns(project))
    assert isinstance(error, ValueError), error
    assert "_bomb.yml" in str(error) and "aliases would expand" in str(error)
    assert peak < MEMORY_LIMIT


def test_a_few_ordinary_aliases_still_load(folder: Path) -> None:
    path = folder / "stalled.yaml"
    text = path.read_text()
    assert "exit_when:" in text and 'goal: {condition: "steps_completed = 4"' in text
    text = text.replace('exit_when: "steps_completed = 4"', "exit_when: *done")
    text = text.replace("goal: {condition: ", "goal: {condition: &done ")
    path.write_text(text)
    [stalled] = [s for s in load_sequences(folder) if s.source_file.endswith("stalled.yaml")]
    assert stalled.exit_when == "steps_completed = 4"
