"""Which landing files exist, what format they are, and their content hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

# Suffix → reader format. Anything else in the folder is ignored (and the sensor says so).
FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".jsonl.gz": "jsonl.gz",
    ".ndjson.gz": "jsonl.gz",
    ".parquet": "parquet",
    ".csv": "csv",
}
_HASH_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class LandingFile:
    path: Path
    file_format: str
    size_bytes: int
    mtime_ns: int


def detect_format(path: Path) -> str | None:
    """The reader format for a file name, or None when we do not read it."""
    name = path.name.lower()
    if name.startswith(".") or name.endswith((".tmp", ".part", ".partial")):
        return None  # writers use these names until the file is complete
    for suffix in sorted(FORMATS, key=len, reverse=True):
        if name.endswith(suffix):
            return FORMATS[suffix]
    return None


def discover_landing_files(folder: Path) -> list[LandingFile]:
    """Every readable landing file under `folder`, sorted by path (stable run order)."""
    if not folder.exists():
        return []
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        file_format = detect_format(path)
        if file_format is None:
            continue
        stat = path.stat()
        found.append(LandingFile(path, file_format, stat.st_size, stat.st_mtime_ns))
    return found


def file_sha256(path: Path) -> str:
    """Content hash of a file, streamed (files may be gigabytes)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_HASH_CHUNK):
            digest.update(block)
    return digest.hexdigest()
