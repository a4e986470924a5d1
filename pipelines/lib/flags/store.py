"""Reading and editing `flags/flags.yaml`.

Reading composes the YAML into nodes first (instead of `yaml.safe_load`) so every problem can
be reported as `path:line: message`, duplicate keys are caught rather than silently
overwritten, and YAML 1.1 `on`/`off` (booleans to PyYAML) are read as the states they mean.

Editing (`set_flag_state`) rewrites only the text of the one setting that changes, so
comments, order and formatting survive; the result is re-parsed and compared before it is
written atomically, so a file is never left half-written or edited in the wrong place.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pipelines.lib.flags.models import KILL_SWITCH, EnvSetting, Flag, FlagError, FlagSet
from pipelines.lib.settings import PROJECT_ROOT

DEFAULT_FLAGS_PATH = PROJECT_ROOT / "flags" / "flags.yaml"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_NULL_TAG = "tag:yaml.org,2002:null"
_TOP_LEVEL_KEYS = ("flags",)


@dataclass(frozen=True)
class _Parsed:
    flags: FlagSet
    # (flag key, environment) -> the mapping node holding that EnvSetting, for editing.
    setting_nodes: dict[tuple[str, str], MappingNode]


class _Reader:
    """Turns a composed node tree into plain Python, remembering the line of every path."""

    def __init__(self, loader: yaml.SafeLoader) -> None:
        self._loader = loader
        self.lines: dict[tuple, int] = {}
        self.problems: list[tuple[int, str]] = []

    def value(self, node: Node, path: tuple) -> Any:
        if isinstance(node, MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.value(key_node, (*path, "<key>"))
                line = key_node.start_mark.line + 1
                if not isinstance(key, str | int):
                    self.problems.append((line, f"mapping key must be a name, got {key!r}"))
                    continue
                if key in result:
                    first = self.lines[(*path, key)]
                    self.problems.append((line, f"duplicate key {key!r} (first at line {first})"))
                    continue
                self.lines[(*path, key)] = line
                result[key] = self.value(value_node, (*path, key))
            return result
        if isinstance(node, SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                self.lines[(*path, index)] = item.start_mark.line + 1
                items.append(self.value(item, (*path, index)))
            return items
        if node.tag == _BOOL_TAG and node.style is None and node.value.lower() in ("on", "off"):
            # YAML 1.1 reads unquoted on/off as booleans; in this file they are always states.
            return node.value.lower()
        return self._loader.construct_object(node, deep=True)


def _syntax_problem(path: Path, exc: yaml.YAMLError) -> FlagError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else 1
    problem = getattr(exc, "problem", None) or str(exc)
    return FlagError(f"{path}:{line}: invalid YAML: {problem}")


def _pydantic_message(error: dict, key: str) -> tuple[tuple, str]:
    """(path relative to the flag, human message) for one pydantic error."""
    loc = tuple(error["loc"])
    where = [key]
    rest = loc
    if loc[:1] == ("environments",) and len(loc) > 1:
        where.append(str(loc[1]))
        rest = loc[2:]
    field = ".".join(str(part) for part in rest)
    kind = error["type"]
    if kind == "missing":
        message = f"missing {field}"
    elif kind == "extra_forbidden":
        message = f"unknown field {rest[-1]!r}"
    elif kind in ("value_error", "flag_problem"):
        message = error["msg"].removeprefix("Value error, ")
    else:
        message = f"{field}: {error['msg']}" if field else error["msg"]
    return loc, f"flag {'/'.join(where)}: {message}"


def _line_for(lines: dict[tuple, int], path: tuple) -> int:
    # Missing fields have no line of their own: point at the nearest enclosing key.
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, 1)


def _parse(text: str, path: Path) -> _Parsed:
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        reader = _Reader(loader)
        data = reader.value(root, ()) if root is not None else None
    except yaml.YAMLError as exc:
        raise _syntax_problem(path, exc) from None
    finally:
        loader.dispose()

    problems = reader.problems
    flags: dict[str, Flag] = {}
    nodes: dict[tuple[str, str], MappingNode] = {}
    if not isinstance(data, dict):
        data = {}
    for name in data:
        if name not in _TOP_LEVEL_KEYS:
            problems.append((reader.lines[(name,)], f"unknown top-level key {name!r}"))
    raw_flags = data.get("flags")
    if not isinstance(raw_flags, dict):
        problems.append(
            (
                _line_for(reader.lines, ("flags",)),
                "expected a top-level `flags:` mapping of flag key -> definition",
            )
        )
        raw_flags = {}
    elif KILL_SWITCH not in raw_flags:
        problems.append(
            (reader.lines[("flags",)], f"missing the {KILL_SWITCH!r} flag (the global kill switch)")
        )

    for key, raw in raw_flags.items():
        here = ("flags", key)
        if not isinstance(raw, dict):
            problems.append((reader.lines[here], f"flag {key}: expected a mapping"))
            continue
        if "key" in raw:
            problems.append(
                (
                    reader.lines[(*here, "key")],
                    f"flag {key}: remove `key:`; the mapping key names the flag",
                )
            )
            continue
        try:
            flags[str(key)] = Flag.model_validate({**raw, "key": key})
        except ValidationError as exc:
            for error in exc.errors():
                loc, message = _pydantic_message(error, str(key))
                problems.append((_line_for(reader.lines, (*here, *loc)), message))
    if problems:
        raise FlagError(
            [f"{path}:{line}: {message}" for line, message in sorted(problems, key=lambda p: p[0])]
        )

    for key_node, value_node in root.value:
        if key_node.value == "flags":
            for flag_key_node, flag_node in value_node.value:
                for field_node, field_value in flag_node.value:
                    if field_node.value == "environments":
                        for env_node, setting_node in field_value.value:
                            nodes[(flag_key_node.value, env_node.value)] = setting_node
    return _Parsed(FlagSet(flags, path), nodes)


def _read_text(path: Path) -> str:
    try:
        # Bytes, not text mode, so \r\n line endings survive an edit byte-for-byte.
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise FlagError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise FlagError(f"{path}: not UTF-8 text ({exc.reason})") from None


def parse_flags(text: str, path: Path = Path("flags.yaml")) -> FlagSet:
    """Validate flags YAML given as text; `path` only labels the error lines."""
    return _parse(text, path).flags


def load_flags(path: Path = DEFAULT_FLAGS_PATH) -> FlagSet:
    """Load and validate `flags.yaml`; FlagError lists every problem as `path:line: message`."""
    return _parse(_read_text(path), path).flags


# --- editing -------------------------------------------------------------------------------


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


def atomic_write_text(path: Path, text: str) -> None:
    """Replace `path` with `text` so readers see the old file or the new one, never a part.

    The temp file lives in the same directory (os.replace is only atomic within a file
    system), is fsynced before the rename, and the directory is fsynced after it so the
    rename itself survives a crash. The original file's permissions are kept.
    """
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with contextlib.suppress(FileNotFoundError):
            os.fchmod(fd, stat.S_IMODE(path.stat().st_mode))
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


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


__all__ = [
    "DEFAULT_FLAGS_PATH",
    "atomic_write_text",
    "load_flags",
    "parse_flags",
    "set_flag_state",
]
