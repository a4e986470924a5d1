"""Which Segment columns a CSV header or Parquet schema names, and which it lacks.

Shared by the CSV and Parquet readers: a file without the required columns, or with one
of them twice, is one missing_columns file fault before any row is read.
"""

from __future__ import annotations

from pipelines.lib.ingest.chunks import BrokenFileError
from pipelines.lib.segment_spec import SEGMENT_COLUMNS

REQUIRED_COLUMNS = ("type", "timestamp")
IDENTITY_COLUMNS = ("userId", "anonymousId")


def _canonical_name(name: str) -> str:
    """A header name as meant: without a byte-order mark or surrounding blanks."""
    return name.strip().lstrip("\ufeff").strip()


def check_columns(present: list[str], what: str) -> dict[str, str]:
    """{name in the file: Segment name} for the Segment columns the file has."""
    found: dict[str, str] = {}
    for name in present:
        canonical = _canonical_name(name)
        if canonical not in SEGMENT_COLUMNS:
            continue
        if canonical in found.values():
            raise BrokenFileError(
                "missing_columns",
                f"{what} has column {canonical} more than once: which one to read is ambiguous",
            )
        found[name] = canonical
    missing = [name for name in REQUIRED_COLUMNS if name not in found.values()]
    if not any(name in found.values() for name in IDENTITY_COLUMNS):
        missing.append("userId or anonymousId")
    if missing:
        raise BrokenFileError(
            "missing_columns",
            f"{what} lacks required column(s): {', '.join(missing)};"
            f" it has: {', '.join(present) or 'none'}",
        )
    order = {name: index for index, name in enumerate(SEGMENT_COLUMNS)}
    return dict(sorted(found.items(), key=lambda item: order[item[1]]))
