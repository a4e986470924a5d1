"""YAML with resource limits, for the reviewed config files (sequences, flags, mart columns).

PyYAML's safe loader is safe against code execution, not against size: an alias is a pointer
to an anchored node, so nine levels of nine aliases (a "billion laughs" file) compose in
microseconds into a graph whose expansion has 9**9 nodes, and every walk over it (line
indexing, validation) then runs out of time and memory. This loader refuses such a document
while composing it, before anything walks it:

- the file is at most MAX_YAML_BYTES (checked before parsing; the real files are a few KiB);
- at most MAX_ALIASES alias references (the real files use none; a few are allowed so a
  hand-written `&anchor` / `*alias` still gets the editor's clear "edit by hand" message);
- the aliases together add at most MAX_ALIAS_EXPANSION units, where a node counts 1 plus the
  length of its text, so both many small nodes (billion laughs) and one long string used many
  times (quadratic blow-up) are caught;
- nesting is at most MAX_DEPTH deep (the composer recurses, deeper would be a RecursionError;
  the scanner's look-ahead over open `[`/`{` grows with the square of the depth);
- an alias inside its own anchor (a recursive structure) is refused.

Refusals raise YamlLimitError, a `yaml.MarkedYAMLError`, so callers that already report YAML
errors as `path:line: message` report these the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import Node, ScalarNode

MAX_YAML_BYTES = 1024 * 1024
MAX_ALIASES = 100
MAX_ALIAS_EXPANSION = 100_000
MAX_DEPTH = 100


class YamlLimitError(yaml.MarkedYAMLError):
    """A document refused for its size or shape; `problem_mark` is where it was noticed."""


class YamlTooLargeError(ValueError):
    """A YAML file or text over MAX_YAML_BYTES; refused before parsing."""


class BoundedSafeLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses alias bombs, recursive aliases and deep nesting."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._expansion = 0  # units added by aliases so far
        self._depth = 0
        # Weight of every finished node by id(): the composer returns the anchored node itself
        # for an alias, so its weight is known, or it is still open (a recursive alias).
        self._weights: dict[int, int] = {}
        self._weight = 0  # running weight of the document as composed so far

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        # Checked in the scanner, not only the composer: before it hands out the first token
        # the scanner reads ahead through every open `[` / `{` (each might start a key), at a
        # cost that grows with the square of the depth, so a file of `[`s would hang it.
        super().fetch_flow_collection_start(TokenClass)
        if self.flow_level > MAX_DEPTH:
            raise YamlLimitError(
                None, None, f"nesting deeper than {MAX_DEPTH} levels; refused", self.get_mark()
            )

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        if self.check_event(AliasEvent):
            event = self.peek_event()
            target = self.anchors.get(event.anchor)
            if target is not None:  # an undefined alias is the composer's own error
                self._count_alias(event.anchor, target, event.start_mark)
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise YamlLimitError(
                None,
                None,
                f"nesting deeper than {MAX_DEPTH} levels; refused",
                self.peek_event().start_mark,
            )
        start = self._weight
        node = super().compose_node(parent, index)
        self._depth -= 1
        own = 1 + (len(node.value) if isinstance(node, ScalarNode) else 0)
        self._weight += own
        self._weights[id(node)] = self._weight - start
        return node

    def _count_alias(self, anchor: str, target: Node, mark: yaml.Mark) -> None:
        weight = self._weights.get(id(target))
        if weight is None:
            message = f"alias *{anchor} is used inside its own anchor (recursive); refused"
            raise YamlLimitError(None, None, message, mark)
        self._aliases += 1
        if self._aliases > MAX_ALIASES:
            raise YamlLimitError(
                None, None, f"more than {MAX_ALIASES} aliases (*name); refused", mark
            )
        self._expansion += weight
        self._weight += weight
        if self._expansion > MAX_ALIAS_EXPANSION:
            raise YamlLimitError(
                None,
                None,
                f"aliases would expand the document by more than {MAX_ALIAS_EXPANSION:,} nodes"
                " and characters (an alias bomb?); refused",
                mark,
            )


def check_yaml_size(text: str) -> None:
    """Raise YamlTooLargeError for text over MAX_YAML_BYTES (UTF-8)."""
    # len() first: a str of n characters is at least n and at most 4n bytes.
    if len(text) > MAX_YAML_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_YAML_BYTES:
        raise YamlTooLargeError(_too_large())


def read_yaml_bytes(path: Path) -> bytes:
    """The file's bytes, refusing one over MAX_YAML_BYTES without reading more than that."""
    with path.open("rb") as handle:
        data = handle.read(MAX_YAML_BYTES + 1)  # one byte past the limit tells, however big
    if len(data) > MAX_YAML_BYTES:
        raise YamlTooLargeError(_too_large())
    return data


def _too_large() -> str:
    return f"the YAML is larger than {MAX_YAML_BYTES:,} bytes; refused before parsing"


def safe_load(text: str) -> Any:
    """`yaml.safe_load` with the limits above (size, aliases, expansion, depth)."""
    check_yaml_size(text)
    return yaml.load(text, Loader=BoundedSafeLoader)  # a SafeLoader subclass


__all__ = [
    "MAX_ALIASES",
    "MAX_ALIAS_EXPANSION",
    "MAX_DEPTH",
    "MAX_YAML_BYTES",
    "BoundedSafeLoader",
    "YamlLimitError",
    "YamlTooLargeError",
    "check_yaml_size",
    "read_yaml_bytes",
    "safe_load",
]
