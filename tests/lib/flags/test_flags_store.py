"""set_flag_state: validation, the --force rule, line-level edits and atomic writes."""

from __future__ import annotations

import os
import stat
import textwrap
import threading
from pathlib import Path

import pytest

from pipelines.lib.flags import (
    DEFAULT_FLAGS_PATH,
    EnvSetting,
    FlagError,
    load_flags,
    set_flag_state,
)
from pipelines.lib.flags import edit as edit_module


@pytest.fixture
def flags_path(tmp_path: Path) -> Path:
    """A copy of the committed flags.yaml, alone in its directory."""
    directory = tmp_path / "flags"
    directory.mkdir()
    path = directory / "flags.yaml"
    path.write_bytes(DEFAULT_FLAGS_PATH.read_bytes())
    return path


def changed_lines(old: bytes, new: bytes) -> list[tuple[str, str]]:
    """(old line, new line) pairs that differ; requires the same number of lines."""
    old_lines, new_lines = old.decode().splitlines(True), new.decode().splitlines(True)
    assert len(old_lines) == len(new_lines)
    return [(a, b) for a, b in zip(old_lines, new_lines, strict=True) if a != b]


def prod_line(path: Path, key: str) -> int:
    """Index of `key`'s prod line in the file."""
    lines = path.read_text().splitlines()
    start = lines.index(f"  {key}:")
    return next(i for i in range(start, len(lines)) if lines[i].strip().startswith("prod:"))


def test_phased_rollout_edits_only_the_one_line(flags_path: Path) -> None:
    steps = [("admins", None), ("rollout", 5), ("rollout", 25), ("rollout", 50), ("on", None)]
    previous = EnvSetting(state="off")
    for state, percent in steps:
        old = flags_path.read_bytes()
        line = prod_line(flags_path, "nurture_stalled")
        before, after = set_flag_state(flags_path, "nurture_stalled", "prod", state, percent)
        assert before == previous
        assert after == EnvSetting(state=state, percent=percent)
        new = flags_path.read_bytes()
        [(old_line, new_line)] = changed_lines(old, new)
        assert old_line == old.decode().splitlines(True)[line]
        rendered = f'"{state}"' if state == "on" else state
        tail = f", percent: {percent}" if percent is not None else ""
        assert new_line == f"      prod:    {{state: {rendered}{tail}}}\n"
        assert load_flags(flags_path).setting("nurture_stalled", "prod") == after
        previous = after
    # Every other flag and environment is untouched.
    flags = load_flags(flags_path)
    assert flags.setting("nurture_lapsed", "prod") == EnvSetting(state="off")
    assert flags.setting("nurture_stalled", "staging") == EnvSetting(state="admins")


def test_comment_after_the_setting_survives(tmp_path: Path) -> None:
    path = tmp_path / "flags.yaml"
    original = DEFAULT_FLAGS_PATH.read_text().replace(
        '      prod:    {state: "off"}\n\n  onboarding',
        '      prod:    {state: "off"}  # hidden: waiting for legal\n\n  onboarding',
    )
    assert "waiting for legal" in original
    path.write_text(original)
    set_flag_state(path, "messaging", "prod", "admins", None)
    [(_, new_line)] = changed_lines(original.encode(), path.read_bytes())
    assert new_line == "      prod:    {state: admins}  # hidden: waiting for legal\n"


BLOCK = """\
# header comment
flags:
  messaging:
    description: Kill switch.
    environments:
      dev:
        state: "on"   # dev sends everything
      staging:
        state: admins
      prod:
        # rollback: bis flags set messaging --state off --env prod --force
        state: rollout  # launched 2024-06
        percent: 5      # ramping
"""


def test_block_style_change_percent(tmp_path: Path) -> None:
    path = tmp_path / "flags.yaml"
    path.write_text(BLOCK)
    set_flag_state(path, "messaging", "prod", "rollout", 25)
    assert changed_lines(BLOCK.encode(), path.read_bytes()) == [
        ("        percent: 5      # ramping\n", "        percent: 25      # ramping\n")
    ]


def test_block_style_removes_and_adds_the_percent_line(tmp_path: Path) -> None:
    path = tmp_path / "flags.yaml"
    path.write_text(BLOCK)
    set_flag_state(path, "messaging", "prod", "on", None)
    assert path.read_text() == BLOCK.replace(
        "        state: rollout  # launched 2024-06\n        percent: 5      # ramping\n",
        '        state: "on"  # launched 2024-06\n',
    )
    set_flag_state(path, "messaging", "staging", "rollout", 10)
    assert path.read_text() == BLOCK.replace(
        "        state: rollout  # launched 2024-06\n        percent: 5      # ramping\n",
        '        state: "on"  # launched 2024-06\n',
    ).replace("        state: admins\n", "        state: rollout\n        percent: 10\n")
    assert load_flags(path).setting("messaging", "staging") == EnvSetting(
        state="rollout", percent=10
    )


def test_crlf_line_endings_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "flags.yaml"
    crlf = BLOCK.replace("\n", "\r\n").encode()
    path.write_bytes(crlf)
    set_flag_state(path, "messaging", "staging", "rollout", 10)
    assert path.read_bytes() == crlf.replace(
        b"        state: admins\r\n", b"        state: rollout\r\n        percent: 10\r\n"
    )


def test_write_is_atomic_and_leaves_no_temp_file(flags_path: Path) -> None:
    os.chmod(flags_path, 0o640)
    inode = flags_path.stat().st_ino
    set_flag_state(flags_path, "messaging", "prod", "admins", None)
    assert os.listdir(flags_path.parent) == ["flags.yaml"]
    # A new file renamed into place (not rewritten in place), with the old permissions.
    assert flags_path.stat().st_ino != inode
    assert stat.S_IMODE(flags_path.stat().st_mode) == 0o640


def test_failed_rename_leaves_the_original_and_no_temp_file(
    flags_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = flags_path.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(edit_module.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        set_flag_state(flags_path, "messaging", "prod", "admins", None)
    assert flags_path.read_bytes() == original
    assert os.listdir(flags_path.parent) == ["flags.yaml"]


def test_unchanged_state_writes_nothing(flags_path: Path) -> None:
    inode = flags_path.stat().st_ino
    before, after = set_flag_state(flags_path, "messaging", "prod", "off", None)
    assert before == after == EnvSetting(state="off")
    assert flags_path.stat().st_ino == inode


@pytest.mark.parametrize(
    ("live", "target"),
    [
        (("rollout", 50), ("rollout", 25)),
        (("rollout", 50), ("admins", None)),
        (("rollout", 5), ("off", None)),
        (("on", None), ("rollout", 50)),
        (("on", None), ("admins", None)),
        (("on", None), ("off", None)),
    ],
)
def test_narrowing_a_live_flag_needs_force(
    flags_path: Path, live: tuple[str, int | None], target: tuple[str, int | None]
) -> None:
    set_flag_state(flags_path, "nurture_stalled", "prod", *live)
    old = flags_path.read_bytes()
    with pytest.raises(FlagError, match="--force"):
        set_flag_state(flags_path, "nurture_stalled", "prod", *target)
    assert flags_path.read_bytes() == old
    before, after = set_flag_state(flags_path, "nurture_stalled", "prod", *target, force=True)
    assert before == EnvSetting(state=live[0], percent=live[1])
    assert load_flags(flags_path).setting("nurture_stalled", "prod") == after


@pytest.mark.parametrize(
    ("live", "target"),
    [
        (("rollout", 25), ("rollout", 50)),
        (("rollout", 25), ("on", None)),
        (("on", None), ("rollout", 100)),  # same audience
        (("admins", None), ("off", None)),  # nothing live to take away
    ],
)
def test_widening_or_unlaunched_changes_need_no_force(
    flags_path: Path, live: tuple[str, int | None], target: tuple[str, int | None]
) -> None:
    set_flag_state(flags_path, "nurture_stalled", "prod", *live)
    _, after = set_flag_state(flags_path, "nurture_stalled", "prod", *target)
    assert load_flags(flags_path).setting("nurture_stalled", "prod") == after


def test_unknown_key_lists_known_keys(flags_path: Path) -> None:
    with pytest.raises(FlagError) as caught:
        set_flag_state(flags_path, "nurture_stale", "prod", "on", None)
    assert str(caught.value) == (
        "unknown flag 'nurture_stale' (known flags: messaging, onboarding_momentum, "
        "nurture_never_started, nurture_stalled, nurture_dormant, nurture_declining, "
        "nurture_lapsed)"
    )


def test_unknown_environment_lists_known_environments(flags_path: Path) -> None:
    with pytest.raises(
        FlagError,
        match=r"unknown environment 'production' \(known "
        r"environments: dev, staging, prod\)",
    ):
        set_flag_state(flags_path, "messaging", "production", "on", None)


@pytest.mark.parametrize(
    ("state", "percent", "message"),
    [
        ("rollout", 150, "percent 150 is outside 0-100"),
        ("rollout", -1, "percent -1 is outside 0-100"),
        ("rollout", None, "state rollout needs a percent"),
        ("on", 50, "percent only applies to state rollout, not on"),
        ("enabled", None, "unknown state 'enabled'"),
    ],
)
def test_invalid_changes_are_refused(
    flags_path: Path, state: str, percent: int | None, message: str
) -> None:
    old = flags_path.read_bytes()
    with pytest.raises(FlagError, match=message):
        set_flag_state(flags_path, "messaging", "dev", state, percent)
    assert flags_path.read_bytes() == old


def test_invalid_file_is_not_edited(flags_path: Path) -> None:
    broken = flags_path.read_text().replace("{state: admins}", "{state: maybe}", 1)
    flags_path.write_text(broken)
    with pytest.raises(FlagError, match=r"flags\.yaml:\d+: flag messaging/staging"):
        set_flag_state(flags_path, "messaging", "prod", "admins", None)
    assert flags_path.read_text() == broken


def test_shared_anchor_is_refused_rather_than_editing_two_settings(tmp_path: Path) -> None:
    path = tmp_path / "flags.yaml"
    text = textwrap.dedent("""\
        flags:
          messaging:
            description: Kill switch.
            environments:
              dev: &same {state: admins}
              staging: *same
              prod: {state: "off"}
        """)
    path.write_text(text)
    with pytest.raises(FlagError, match="cannot edit messaging/dev in place"):
        set_flag_state(path, "messaging", "dev", "on", None)
    assert path.read_text() == text


def test_concurrent_edits_are_not_lost(flags_path: Path) -> None:
    keys = list(load_flags(flags_path).flags)
    errors: list[BaseException] = []

    def flip(key: str) -> None:
        try:
            set_flag_state(flags_path, key, "prod", "admins", None)
        except BaseException as exc:  # surfaced below; threads swallow exceptions
            errors.append(exc)

    threads = [threading.Thread(target=flip, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    flags = load_flags(flags_path)
    assert {key: flags.setting(key, "prod").state for key in keys} == dict.fromkeys(keys, "admins")
