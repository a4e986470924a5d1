"""Editing `flags/flags.yaml`: `set_flag_state`.

It rewrites only the text of the one setting that changes, so comments, order and formatting
survive; the result is re-parsed and compared before it is written atomically, so a file is
never left half-written or edited in the wrong place.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError
from yaml.nodes import MappingNode, ScalarNode

from pipelines.lib.atomic_files import atomic_write_text
from pipelines.lib.flags.models import EnvSetting, FlagError, FlagSet
from pipelines.lib.flags.store import _NULL_TAG, _parse, _read_text


def _new_setting(state: str, percent: int | None) -> EnvSetting:
    try:
        return EnvSetting(state=state, percent=percent)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise FlagError([e["msg"].removeprefix("Value error, ") for e in exc.errors()]) from None


def _narrows(before: EnvSetting, after: EnvSetting) -> bool:
    """True when users who get email under `before` would stop getting it under `after`."""
    if before.state not in ("rollout", "on"):
        return False  # admins/off: the only people affected are internal
    if after.state == "on":
        return False
    if after.state == "rollout":
        live_percent = before.percent if before.state == "rollout" else 100
        return (after.percent or 0) < (live_percent or 0)
    return True


def _render_state(state: str) -> str:
    # Quoted so no YAML 1.1 reader (PyYAML, older tools) turns them into booleans.
    return f'"{state}"' if state in ("on", "off") else state


def _render_flow(setting: EnvSetting) -> str:
    parts = [f"state: {_render_state(setting.state)}"]
    if setting.percent is not None:
        parts.append(f"percent: {setting.percent}")
    return "{" + ", ".join(parts) + "}"


def _line_end(text: str, index: int) -> int:
    """Index of the line break ending the line that contains `index` (or len(text))."""
    end = text.find("\n", index)
    if end == -1:
        return len(text)
    return end - 1 if end > 0 and text[end - 1] == "\r" else end


def _remove_lines(text: str, start: int, end: int) -> tuple[int, int]:
    """Span covering whole lines from `start` to `end`, including one line break."""
    line_start = text.rfind("\n", 0, start) + 1
    stop = text.find("\n", end)
    if stop != -1:
        return line_start, stop + 1
    # Last line without a trailing break: take the break before it instead.
    before = line_start - 1
    if before > 0 and text[before - 1] == "\r":
        before -= 1
    return max(before, 0), len(text)


def _edits(text: str, node: MappingNode, after: EnvSetting) -> list[tuple[int, int, str]]:
    """(start, end, replacement) spans turning `node`'s setting into `after`."""
    if node.flow_style:
        return [(node.start_mark.index, node.end_mark.index, _render_flow(after))]
    pairs = {key.value: (key, value) for key, value in node.value}
    state_key, state_value = pairs["state"]
    edits = [(state_value.start_mark.index, state_value.end_mark.index, _render_state(after.state))]
    percent = pairs.get("percent")
    usable = (
        percent is not None
        and isinstance(percent[1], ScalarNode)
        and percent[1].tag != _NULL_TAG
        and percent[1].start_mark.line == percent[0].start_mark.line
    )
    if after.percent is not None and usable:
        assert percent is not None
        edits.append((percent[1].start_mark.index, percent[1].end_mark.index, str(after.percent)))
        return edits
    if percent is not None:
        start, end = _remove_lines(text, percent[0].start_mark.index, percent[1].end_mark.index)
        edits.append((start, end, ""))
    if after.percent is not None:
        newline = "\r\n" if "\r\n" in text else "\n"
        at = _line_end(text, state_value.end_mark.index)
        indent = " " * state_key.start_mark.column
        edits.append((at, at, f"{newline}{indent}percent: {after.percent}"))
    return edits


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


@contextlib.contextmanager
def _directory_lock(directory: Path) -> Iterator[None]:
    """Serialise concurrent `bis flags set` runs (read-modify-write) without a lock file."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def set_flag_state(
    path: Path,
    key: str,
    env: str,
    state: str,
    percent: int | None,
    *,
    force: bool = False,
) -> tuple[EnvSetting, EnvSetting]:
    """Set `key` in `env` to `state` (and `percent` for rollout); returns (before, after).

    Refuses, unless `force`, any change that stops email for users already receiving it
    (lowering a rollout, or rollout/on to admins/off). A change to the current state writes
    nothing.
    """
    path = path.resolve()  # edit the real file, not replace a symlink with a copy
    with _directory_lock(path.parent):
        text = _read_text(path)
        parsed = _parse(text, path)
        before = parsed.flags.setting(key, env)
        after = _new_setting(state, percent)
        if after == before:
            return before, after
        if _narrows(before, after) and not force:
            raise FlagError(
                f"{key} in {env} is live at {before.describe()}; {after.describe()} would stop "
                "email to users already receiving it. Use --force (force=True) to confirm."
            )
        new_text = _apply(text, _edits(text, parsed.setting_nodes[(key, env)], after))
        _check_edit(parsed.flags, new_text, path, key, env, after)
        atomic_write_text(path, new_text)
    return before, after


def _check_edit(
    old: FlagSet, new_text: str, path: Path, key: str, env: str, after: EnvSetting
) -> None:
    """The edited text must differ from the old file in exactly the one setting.

    Catches shapes the line editor does not understand (anchors shared between environments,
    odd layouts) before anything is written.
    """
    try:
        new = _parse(new_text, path).flags
    except FlagError as exc:
        raise FlagError(f"{path}: cannot edit {key}/{env} in place ({exc}); edit by hand") from None
    expected = {
        (flag_key, name): (after if (flag_key, name) == (key, env) else setting)
        for flag_key, flag in old.flags.items()
        for name, setting in flag.environments.items()
    }
    actual = {
        (flag_key, name): setting
        for flag_key, flag in new.flags.items()
        for name, setting in flag.environments.items()
    }
    others_same = all(
        old.flags[k].model_dump(exclude={"environments"})
        == new.flags[k].model_dump(exclude={"environments"})
        for k in old.flags
        if k in new.flags
    )
    if actual != expected or not others_same or list(new.flags) != list(old.flags):
        raise FlagError(
            f"{path}: cannot edit {key}/{env} in place (the layout would change other "
            "settings, e.g. a shared YAML anchor); edit by hand"
        )


__all__ = ["set_flag_state"]
