"""Reading `flags/flags.yaml` (editing is in edit.py).

Reading composes the YAML into nodes first (instead of `yaml.safe_load`) so every problem can
be reported as `path:line: message`, duplicate keys are caught rather than silently
overwritten, and YAML 1.1 `on`/`off` (booleans to PyYAML) are read as the states they mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from yaml.nodes import MappingNode, Node, SequenceNode

from pipelines.lib.flags.models import KILL_SWITCH, Flag, FlagError, FlagSet
from pipelines.lib.settings import PROJECT_ROOT
from pipelines.lib.yaml_limits import (
    BoundedSafeLoader,
    YamlTooLargeError,
    check_yaml_size,
    read_yaml_bytes,
)

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

    def __init__(self, loader: BoundedSafeLoader) -> None:
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
    try:
        check_yaml_size(text)
    except YamlTooLargeError as exc:
        raise FlagError(f"{path}:1: {exc}") from None
    # Bounded: an alias bomb is refused while composing, before _Reader walks the graph.
    loader = BoundedSafeLoader(text)
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
        return read_yaml_bytes(path).decode("utf-8")
    except YamlTooLargeError as exc:
        raise FlagError(f"{path}:1: {exc}") from None
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


__all__ = [
    "DEFAULT_FLAGS_PATH",
    "load_flags",
    "parse_flags",
]
