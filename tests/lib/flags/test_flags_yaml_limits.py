"""A flags file that would expand without bound (alias bombs, cycles, deep nesting, huge file)
is refused while parsing, with the file and line, in bounded memory; nothing is written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines import cli
from pipelines.lib.flags import (
    DEFAULT_FLAGS_PATH,
    FlagError,
    load_flags,
    parse_flags,
    set_flag_state,
)
from tests.support.yaml_bombs import BOMBS, MEMORY_LIMIT, REFUSAL, measure

NAMES = sorted(BOMBS)


@pytest.fixture
def flags_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "flags"
    directory.mkdir()
    return directory


def plant(directory: Path, name: str) -> Path:
    """The committed flags.yaml with bomb `name` appended, as an editor of the file would."""
    path = directory / "flags.yaml"
    path.write_bytes(DEFAULT_FLAGS_PATH.read_bytes() + BOMBS[name].encode())
    return path


def assert_refused(error: Exception | None, path: Path, name: str) -> None:
    assert isinstance(error, FlagError), error
    [problem] = error.problems
    assert re.match(rf"{re.escape(str(path))}:\d+: ", problem), problem
    assert REFUSAL[name] in problem and "refused" in problem


@pytest.mark.parametrize("name", NAMES)
def test_load_flags_refuses_with_file_and_line(flags_dir: Path, name: str) -> None:
    path = plant(flags_dir, name)
    _, error, peak = measure(lambda: load_flags(path))
    assert_refused(error, path, name)
    assert peak < MEMORY_LIMIT


@pytest.mark.parametrize("name", NAMES)
def test_parse_flags_refuses_text(name: str) -> None:
    label = Path("given.yaml")
    _, error, peak = measure(
        lambda: parse_flags(DEFAULT_FLAGS_PATH.read_text() + BOMBS[name], label)
    )
    assert_refused(error, label, name)
    assert peak < MEMORY_LIMIT


@pytest.mark.parametrize("name", NAMES)
def test_set_flag_state_refuses_and_writes_nothing(flags_dir: Path, name: str) -> None:
    path = plant(flags_dir, name)
    before = path.read_bytes()
    _, error, peak = measure(lambda: set_flag_state(path, "messaging", "dev", "on", None))
    assert_refused(error, path.resolve(), name)
    assert peak < MEMORY_LIMIT
    assert path.read_bytes() == before
    assert sorted(p.name for p in flags_dir.iterdir()) == ["flags.yaml"]  # no temp file left


@pytest.mark.parametrize("name", ["billion_laughs", "quadratic_blowup", "deep_nesting"])
def test_bis_flags_set_refuses_with_exit_2(
    flags_dir: Path,
    name: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    data_dir: Path,
) -> None:
    path = plant(flags_dir, name)
    before = path.read_bytes()
    monkeypatch.setattr(cli, "FLAGS_FILE", path)
    argv = ["flags", "set", "messaging", "--state", "on", "--env", "dev"]
    code, error, peak = measure(lambda: cli.main(argv))
    assert (code, error) == (2, None)
    err = capsys.readouterr().err
    assert re.search(rf"{re.escape(str(path.resolve()))}:\d+: .*{re.escape(REFUSAL[name])}", err)
    assert peak < MEMORY_LIMIT
    assert path.read_bytes() == before


def test_the_committed_file_and_a_shared_anchor_still_load(flags_dir: Path) -> None:
    """The limits leave ordinary files alone: aliases are rare, not forbidden."""
    assert "messaging" in load_flags(DEFAULT_FLAGS_PATH).flags
    path = flags_dir / "flags.yaml"
    path.write_text(
        "flags:\n"
        "  messaging:\n"
        "    description: Kill switch.\n"
        "    environments:\n"
        "      dev: &same {state: admins}\n"
        "      staging: *same\n"
        '      prod: {state: "off"}\n'
    )
    assert load_flags(path).setting("messaging", "staging").state == "admins"
