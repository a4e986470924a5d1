"""pipelines/lib/yaml_limits.py at its boundaries: just inside each limit loads, just past it
is refused; a document just inside every limit still loads in bounded memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.lib.flags import FlagError, parse_flags
from pipelines.lib.sequences.yaml_lines import load_yaml_with_lines
from pipelines.lib.yaml_limits import (
    MAX_ALIAS_EXPANSION,
    MAX_ALIASES,
    MAX_DEPTH,
    MAX_YAML_BYTES,
    YamlLimitError,
    YamlTooLargeError,
    check_yaml_size,
    read_yaml_bytes,
    safe_load,
)
from tests.support import yaml_bombs
from tests.support.yaml_bombs import MEMORY_LIMIT, measure


def aliases(count: int) -> str:
    return "one: &one 1\nmany: [" + ", ".join(["*one"] * count) + "]\n"


def test_the_bombs_use_the_promised_size_limit() -> None:
    assert yaml_bombs.MAX_YAML_BYTES == MAX_YAML_BYTES


def test_alias_count_boundary() -> None:
    assert safe_load(aliases(MAX_ALIASES))["many"] == [1] * MAX_ALIASES
    with pytest.raises(YamlLimitError, match=f"more than {MAX_ALIASES} aliases") as caught:
        safe_load(aliases(MAX_ALIASES + 1))
    assert caught.value.problem_mark is not None and caught.value.problem_mark.line == 1


def test_alias_expansion_boundary() -> None:
    # A scalar weighs 1 + its length; MAX_ALIASES uses of one string of `size` characters.
    size = MAX_ALIAS_EXPANSION // MAX_ALIASES - 1
    inside = f'big: &big "{"x" * size}"\nmany: [' + ", ".join(["*big"] * MAX_ALIASES) + "]\n"
    assert len(safe_load(inside)["many"]) == MAX_ALIASES
    past = inside.replace("x" * size, "x" * (size + 1))
    with pytest.raises(YamlLimitError, match="aliases would expand the document"):
        safe_load(past)


def test_nesting_boundary_in_block_and_flow_style() -> None:
    # Depth counts nodes from the root: MAX_DEPTH nested sequences; MAX_DEPTH - 1 nested
    # mappings around a scalar.
    flow = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    lines = [f"{'  ' * level}k:" for level in range(MAX_DEPTH - 2)]
    block = "\n".join([*lines, f"{'  ' * (MAX_DEPTH - 2)}k: 1"]) + "\n"
    safe_load(flow)
    safe_load(block)
    deeper_block = "k:\n" + "".join(f"  {line}\n" for line in block.splitlines())
    for deeper in ("[" + flow + "]", deeper_block):
        with pytest.raises(YamlLimitError, match=f"nesting deeper than {MAX_DEPTH}"):
            safe_load(deeper)


def test_size_boundary_for_text_and_files(tmp_path: Path) -> None:
    check_yaml_size("#" * MAX_YAML_BYTES)
    with pytest.raises(YamlTooLargeError, match="larger than 1,048,576 bytes"):
        safe_load("#" * (MAX_YAML_BYTES + 1))
    with pytest.raises(YamlTooLargeError):
        safe_load("é" * (MAX_YAML_BYTES // 2 + 1))  # fewer characters than bytes
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * MAX_YAML_BYTES)
    assert len(read_yaml_bytes(path)) == MAX_YAML_BYTES
    path.write_bytes(b"#" * (MAX_YAML_BYTES * 8))
    _, error, peak = measure(lambda: read_yaml_bytes(path))
    assert isinstance(error, YamlTooLargeError)
    assert peak < 2 * MAX_YAML_BYTES + 1024 * 1024  # read the limit, not the file


def near_limit_document() -> str:
    """Every limit used almost fully: 100 aliases of a 999-unit block (1 + 499 small items)."""
    block = "[" + ", ".join(["1"] * 499) + "]"
    refs = ", ".join(["*block"] * MAX_ALIASES)
    return f"block: &block {block}\nmany: [{refs}]\n"


def test_a_document_just_inside_the_limits_loads_in_bounded_memory() -> None:
    text = near_limit_document()
    located, error, peak = measure(lambda: load_yaml_with_lines("id: x\n" + text))
    assert error is None
    assert len(located.data["many"]) == MAX_ALIASES
    assert len(located.lines) > 40_000  # every expanded item indexed, and still small
    assert peak < MEMORY_LIMIT
    _, error, peak = measure(lambda: parse_flags("flags: {}\n" + text, Path("f.yaml")))
    assert isinstance(error, FlagError) and "unknown top-level key 'block'" in str(error)
    assert peak < MEMORY_LIMIT
