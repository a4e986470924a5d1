"""Finding lines over the line limit in a block of bytes, for the JSON Lines and CSV readers.

Lines are split on b"\\n" only. A line over the limit is never handed on whole: the
readers keep its first KEPT_PREFIX_BYTES and its length, and reject it as line_too_long.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from pipelines.lib.ingest.chunks import Reject, escaped, mib


@dataclass
class LongLine:
    """An over-long line being skipped: its number, first bytes, and length so far."""

    line: int
    prefix: bytes
    length: int


def line_too_long(line: int, prefix: bytes, length: int, limit: int) -> Reject:
    """The rejection of line `line`, `length` bytes long, over `limit`."""
    return Reject(
        line,
        escaped(prefix.rstrip(b"\r")),
        "line_too_long",
        f"line {line} is {length} bytes, over the {mib(limit)} line limit; it was"
        f" not read whole (its first {len(prefix)} bytes are kept)",
    )


def has_long_line(data: bytes, limit: int) -> bool:
    """Whether some line of `data` is longer than `limit` bytes (line break excluded).

    Steps from line break to line break at most `limit` bytes apart with rfind, so a
    chunk of ordinary lines costs about len(data) / limit calls: nearly free.
    """
    last = -1  # position of the last line break seen
    size = len(data)
    while size - (last + 1) > limit:
        found = data.rfind(b"\n", last + 1, last + 2 + limit)
        if found < 0:
            return True
        last = found
    return False


def split_long_lines(data: bytes, limit: int) -> Iterator[tuple[int, int, bool]]:
    """(start, end, is_long) ranges covering `data` in order, whole lines each: runs of
    ordinary lines, and single lines longer than `limit` (end excludes the line break)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    breaks = np.flatnonzero(buf == 10)
    starts = np.concatenate(([0], breaks + 1))
    content_ends = np.append(breaks, len(data))
    if starts[-1] == len(data):  # data ends with a line break: no final partial line
        starts, content_ends = starts[:-1], content_ends[:-1]
    long_lines = np.flatnonzero(content_ends - starts > limit)
    position = 0  # first line not yet covered
    for index in long_lines:
        if index > position:
            yield int(starts[position]), int(starts[index]), False
        yield int(starts[index]), int(content_ends[index]), True
        position = index + 1
    if position < len(starts):
        yield int(starts[position]), len(data), False
