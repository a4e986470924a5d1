"""YAML loading that keeps line numbers: the map behind every `file:line` message."""

from __future__ import annotations

import pytest

from pipelines.lib.sequences.yaml_lines import YamlSyntaxError, dotted_path, load_yaml_with_lines

TEXT = """\
# a comment
id: x
audience: {segment: stalled}
steps:
  - id: a
    when: "x = 1"

  - id: b
    when: >
      x = 2
"""


def test_lines_of_keys_and_items() -> None:
    located = load_yaml_with_lines(TEXT)
    assert located.data["steps"][1] == {"id": "b", "when": "x = 2\n"}
    assert located.lines[("id",)] == 2
    assert located.lines[("audience", "segment")] == 3
    assert located.lines[("steps",)] == 4
    assert located.lines[("steps", 0)] == 5
    assert located.lines[("steps", 1, "when")] == 9
    # A path that does not exist falls back to its nearest ancestor.
    assert located.line_of(("steps", 1, "template")) == 8
    assert located.line_of(("nope",)) == 2
    assert located.duplicate_keys == []


def test_syntax_errors_carry_the_parser_line() -> None:
    with pytest.raises(YamlSyntaxError) as raised:
        load_yaml_with_lines("id: x\nsteps:\n  - id: a\n   bad: indent\n")
    assert raised.value.line == 4
    with pytest.raises(YamlSyntaxError, match="single document"):
        load_yaml_with_lines("id: x\n---\nid: y\n")


def test_duplicate_keys_point_at_the_value_yaml_keeps() -> None:
    located = load_yaml_with_lines("id: x\npriority: 1\npriority: 2\n")
    assert located.data["priority"] == 2
    assert located.lines[("priority",)] == 3
    assert located.duplicate_keys == [(3, "duplicate key 'priority'")]


def test_dotted_path() -> None:
    assert dotted_path(("steps", 1, "when")) == "steps[1].when"
    assert dotted_path(("goal", "condition")) == "goal.condition"
