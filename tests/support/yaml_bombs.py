"""YAML documents that are small on disk but huge, endless or too deep once composed.

Each is a mapping of top-level keys, so it can stand alone or be appended to a real
sequences or flags file (as someone editing that file would do).
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

# The size limit the loaders promise (pipelines/lib/yaml_limits.py, docs/architecture.md §6).
MAX_YAML_BYTES = 1024 * 1024

# Refusing any of these must stay well below this (the unbounded walk needs gigabytes).
MEMORY_LIMIT = 50 * 1024 * 1024


def measure(call: Callable[[], Any]) -> tuple[Any, Exception | None, int]:
    """(what `call` returned, the exception it raised, peak bytes allocated while it ran)."""
    result: Any = None
    error: Exception | None = None
    tracemalloc.start()
    try:
        result = call()
    except Exception as exc:  # returned for the test to judge
        error = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return result, error, peak


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    """The classic: `levels` anchors of `width` aliases each, width**levels "lol"s expanded.

    Only levels * width aliases (81), so a plain alias count of 100 would let it through.
    """
    lines = ['lol0: &lol0 "lol"']
    for level in range(1, levels + 1):
        refs = ", ".join([f"*lol{level - 1}"] * width)
        lines.append(f"lol{level}: &lol{level} [{refs}]")
    return "\n".join(lines) + "\n"


def quadratic_blowup(chars: int = 20_000, refs: int = 90) -> str:
    """One long string used `refs` times: few aliases, chars * refs characters expanded."""
    many = ", ".join(["*big"] * refs)
    return f'big: &big "{"x" * chars}"\nmany: [{many}]\n'


def many_aliases(count: int = 20_000) -> str:
    """Many references to one tiny node."""
    return "one: &one 1\nmany: [" + ", ".join(["*one"] * count) + "]\n"


def merge_key_bomb(levels: int = 9, width: int = 9) -> str:
    """Billion laughs through `<<:` merge keys, which copy the merged pairs when constructed."""
    lines = ["m0: &m0 {a: 1, b: 2}"]
    for level in range(1, levels + 1):
        refs = ", ".join([f"*m{level - 1}"] * width)
        lines.append(f"m{level}: &m{level} {{<<: [{refs}], k{level}: {level}}}")
    return "\n".join(lines) + "\n"


def recursive_alias() -> str:
    """An alias inside its own anchor: a cycle that every tree walk would follow forever."""
    return "loop: &loop [1, *loop]\n"


def deep_nesting(depth: int = 50_000) -> str:
    """Nesting deep enough to overflow a recursive composer or walker."""
    return "deep: " + "[" * depth + "]" * depth + "\n"


def oversized() -> str:
    """Plain YAML just over the size limit (a comment-only tail)."""
    line = "# padding " + "-" * 53 + "\n"  # 64 bytes
    return line * (MAX_YAML_BYTES // len(line) + 1)


BOMBS = {
    "billion_laughs": billion_laughs(),
    "quadratic_blowup": quadratic_blowup(),
    "many_aliases": many_aliases(),
    "merge_key_bomb": merge_key_bomb(),
    "recursive_alias": recursive_alias(),
    "deep_nesting": deep_nesting(),
    "oversized": oversized(),
}

# A part of the refusal message each bomb must produce.
REFUSAL = {
    "billion_laughs": "aliases would expand the document",
    "quadratic_blowup": "aliases would expand the document",
    "many_aliases": "more than 100 aliases",
    "merge_key_bomb": "aliases would expand the document",
    "recursive_alias": "alias *loop is used inside its own anchor",
    "deep_nesting": "nesting deeper than 100 levels",
    "oversized": "larger than 1,048,576 bytes",
}
