"""Which landing files exist, what format they are, and their content hash.

Only regular files are read. Symbolic links are never followed (a link to a system file
must not put its lines into the warehouse) and special files (FIFOs, devices, sockets) are
never opened (reading one could block forever or never end): both are reported as skipped,
with the reason, instead.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

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
_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a folder",
    stat.S_IFLNK: "a symbolic link",
}


@dataclass(frozen=True)
class LandingFile:
    path: Path
    file_format: str
    size_bytes: int
    mtime_ns: int


@dataclass(frozen=True)
class SkippedPath:
    """A path in the landing folder that is not read, and why (shown to the operator)."""

    path: Path
    code: str  # "symlink" | "not_regular_file" | "unlistable_folder"
    reason: str


@dataclass(frozen=True)
class LandingScan:
    files: list[LandingFile]
    skipped: list[SkippedPath] = field(default_factory=list)


class NotRegularFileError(OSError):
    """The path is a symbolic link or a special file: it is not read."""

    def __init__(self, path: Path, code: str, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.code = code
        self.reason = reason


def detect_format(path: Path) -> str | None:
    """The reader format for a file name, or None when we do not read it."""
    name = path.name.lower()
    if name.startswith(".") or name.endswith((".tmp", ".part", ".partial")):
        return None  # writers use these names until the file is complete
    for suffix in sorted(FORMATS, key=len, reverse=True):
        if name.endswith(suffix):
            return FORMATS[suffix]
    return None


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def _symlink_reason(path: Path) -> str:
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    return (
        f"symbolic link (to {target}): links are not followed; move or copy the file itself"
        " into the landing folder"
    )


def scan_landing_folder(
    folder: Path, detect: Callable[[Path], str | None] = detect_format
) -> LandingScan:
    """Every landing file under `folder` (sorted by path, a stable run order), and the
    paths that look like landing input but are not read (symbolic links, special files,
    folders that cannot be listed). Nothing is opened and no link is followed. `detect`
    names a file's format, or None for a file that is not input (the webhook folder reads
    only its own JSON Lines)."""
    if not folder.exists():
        return LandingScan([])
    files: list[LandingFile] = []
    skipped: list[SkippedPath] = []
    pending = [folder]
    while pending:
        directory = pending.pop()
        try:
            with os.scandir(directory) as entries:
                listed = list(entries)
        except OSError as exc:
            if directory == folder:
                raise  # the landing folder itself: the machine's or the operator's fault
            reason = f"folder cannot be listed ({exc.strerror or exc}); its files are not read"
            skipped.append(SkippedPath(directory, "unlistable_folder", reason))
            continue
        for entry in listed:
            path = Path(entry.path)
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue  # vanished while listing
            if stat.S_ISDIR(info.st_mode):
                pending.append(path)
                continue
            file_format = detect(path)
            if stat.S_ISLNK(info.st_mode):
                # A linked folder is reported whatever its name: its files are not read.
                if file_format is not None or os.path.isdir(path):
                    skipped.append(SkippedPath(path, "symlink", _symlink_reason(path)))
                continue
            if file_format is None:
                continue
            if not stat.S_ISREG(info.st_mode):
                reason = f"{_kind(info.st_mode)}, not a regular file: not read"
                skipped.append(SkippedPath(path, "not_regular_file", reason))
                continue
            files.append(LandingFile(path, file_format, info.st_size, info.st_mtime_ns))
    files.sort(key=lambda landing: landing.path)
    skipped.sort(key=lambda item: item.path)
    return LandingScan(files, skipped)


def discover_landing_files(folder: Path) -> list[LandingFile]:
    """Every readable landing file under `folder`, sorted by path (stable run order)."""
    return scan_landing_folder(folder).files


def open_landing_file(path: Path) -> BinaryIO:
    """Open a regular file for reading without following a symbolic link and without
    blocking on a FIFO; anything else raises NotRegularFileError.

    The check is made on the open descriptor, so a file swapped for a link or a pipe after
    the folder was scanned is refused too.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP and os.path.islink(path):
            raise NotRegularFileError(path, "symlink", _symlink_reason(path)) from exc
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            reason = f"{_kind(info.st_mode)}, not a regular file: not read"
            raise NotRegularFileError(path, "not_regular_file", reason)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def handle_sha256(handle: BinaryIO) -> str:
    """Content hash of an open file from its start, streamed; leaves it at the start."""
    digest = hashlib.sha256()
    handle.seek(0)
    while block := handle.read(_HASH_CHUNK):
        digest.update(block)
    handle.seek(0)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """Content hash of a file, streamed (files may be gigabytes)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_HASH_CHUNK):
            digest.update(block)
    return digest.hexdigest()
