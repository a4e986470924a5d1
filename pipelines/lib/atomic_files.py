"""Files replaced whole: readers see the old content or the new, never a part.

The temp file lives beside the target (a rename is atomic only within one file system), is
fsynced before the rename, and the folder is fsynced after it, so the rename itself survives
a crash. A write that fails (a full disk, a read-only folder) names the target in its error
and leaves nothing behind, neither a half-written target nor the temp file.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from pipelines.lib.faults import about


@contextmanager
def atomic_output(path: Path, mode: str = "wb") -> Iterator[IO]:
    """A handle to write `path`'s new content to; it replaces `path` when the block ends
    without an exception. The original file's permissions are kept."""
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with contextlib.suppress(FileNotFoundError):
            os.fchmod(fd, stat.S_IMODE(path.stat().st_mode))
        encoding = None if "b" in mode else "utf-8"
        # A write to an open file names no path: name the target, for a one-line fault.
        with about(path), os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    fsync_path(path.parent)


def fsync_path(path: Path) -> None:
    """Flush a file, or a folder's entries (so a rename in it survives a crash), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Replace `path` with `text` (UTF-8), atomically."""
    with atomic_output(path) as handle:
        handle.write(text.encode("utf-8"))


__all__ = ["atomic_output", "atomic_write_text", "fsync_path"]
