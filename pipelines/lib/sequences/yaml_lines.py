"""YAML loading that remembers where every value came from.

`bis sequences check` must point at the line of the offending key, but `yaml.safe_load` throws
positions away. Composing the node tree first keeps each node's `start_mark`, so one parse gives
both the plain data and a map from node paths such as `("steps", 1, "when")` to 1-based lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from pipelines.lib.yaml_limits import BoundedSafeLoader, YamlTooLargeError, check_yaml_size

PathKey = tuple[str | int, ...]


class YamlSyntaxError(ValueError):
    """The text is not valid YAML; `line` is 1-based, as the parser reported it."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


@dataclass(frozen=True)
class LocatedYaml:
    """Parsed YAML plus the line of every mapping key and sequence item."""

    data: Any
    lines: dict[PathKey, int]
    # (line, message) for keys repeated in one mapping: PyYAML silently keeps the last one,
    # which would let a reviewer read one `when:` while the pipeline runs another.
    duplicate_keys: list[tuple[int, str]] = field(default_factory=list)

    def line_of(self, path: Sequence[str | int]) -> int:
        """Line of `path`, else of its nearest ancestor that exists (e.g. for a missing key)."""
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), 1)


def load_yaml_with_lines(text: str) -> LocatedYaml:
    """Parse one YAML document with the safe loader, keeping line numbers.

    Raises YamlSyntaxError (with the parser's line) for invalid YAML or several documents, and
    for a document over the limits of pipelines.lib.yaml_limits (size, alias bombs, nesting).
    """
    try:
        check_yaml_size(text)
    except YamlTooLargeError as exc:
        raise YamlSyntaxError(1, str(exc)) from None
    loader = BoundedSafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        # "expected a single document in the stream, but found another document"
        problem = ", ".join(part for part in (exc.context, exc.problem) if part) or "syntax error"
        raise YamlSyntaxError(line, f"invalid YAML: {problem}") from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(1, f"invalid YAML: {exc}") from exc
    finally:
        loader.dispose()

    lines: dict[PathKey, int] = {}
    duplicates: list[tuple[int, str]] = []
    if node is not None:
        lines[()] = node.start_mark.line + 1
        _index(node, (), lines, duplicates)
    return LocatedYaml(data=data, lines=lines, duplicate_keys=duplicates)


def _index(
    node: yaml.Node,
    path: PathKey,
    lines: dict[PathKey, int],
    duplicates: list[tuple[int, str]],
) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            # Keys are plain scalars in every file we read; anything else is indexed by its text.
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            line = key_node.start_mark.line + 1
            child = (*path, key)
            if key in seen:
                dotted = dotted_path(child)
                duplicates.append((line, f"duplicate key '{dotted}'"))
            seen.add(key)
            # The key's line, not the value's: for `steps:` the value starts one line lower.
            # A repeated key overwrites: YAML keeps the last value, so that is the line to blame.
            lines[child] = line
            _index(value_node, child, lines, duplicates)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _index(item, (*path, index), lines, duplicates)


def dotted_path(path: Sequence[str | int]) -> str:
    """`("steps", 1, "when")` -> `steps[1].when`, the way a reader names a YAML value."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text
