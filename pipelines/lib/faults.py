"""Faults of the machine (disk full, read-only or forbidden folder, failing disk, memory
exhausted) as one line.

A traceback tells an operator nothing a line like
`/data/warehouse.duckdb.wal: No space left on device (ENOSPC)` does not. The fault may come
as an OSError, possibly wrapped by another exception, or only as text: DuckDB reports
`IO Error: Could not write file "…": No space left on device`, and dbt runs in a
subprocess whose output is all we have.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

from pipelines.lib.runlock import WarehouseBusyError
from pipelines.lib.warehouse import memory_limit

# What the machine, not the data or the code, is to blame for.
FAULT_ERRNOS: tuple[int, ...] = (
    errno.ENOSPC,  # disk full
    errno.EDQUOT,  # quota exhausted
    errno.EFBIG,  # file size limit (ulimit -f) or the file system's maximum
    errno.EROFS,  # read-only file system
    errno.EACCES,  # permission denied
    errno.EPERM,  # operation not permitted (immutable file, ...)
    errno.EIO,  # the disk failed
)
_BY_MESSAGE = {os.strerror(code): code for code in FAULT_ERRNOS}
# `"<path>": <strerror>` (DuckDB), else `<strerror>: '<path>'` (Python's OSError text).
_QUOTED_PATH = r"[\"'](?P<path>/[^\"'\n]*)[\"']"
_TEXT_PATTERNS = [
    re.compile(rf"{_QUOTED_PATH}[^\"'\n]*?(?P<message>{'|'.join(map(re.escape, _BY_MESSAGE))})"),
    re.compile(rf"(?P<message>{'|'.join(map(re.escape, _BY_MESSAGE))})\)?:? {_QUOTED_PATH}"),
    re.compile(rf"(?P<message>{'|'.join(map(re.escape, _BY_MESSAGE))})"),
]


# DuckDB: `Out of Memory Error: failed to pin block of size 256.0 KiB (976.0 KiB/976.5 KiB
# used)`, then advice over several lines.
_OUT_OF_MEMORY = re.compile(r"Out of Memory Error: ([^\n]*)")


class OutOfMemory(RuntimeError):
    """DuckDB (in this process or in dbt's) ran out of its memory limit."""


def out_of_memory_in_text(text: str) -> OutOfMemory | None:
    match = _OUT_OF_MEMORY.search(text)
    if match is None:
        return None
    return OutOfMemory(
        f"DuckDB ran out of memory: {match.group(1).strip()}; its limit is"
        f" BIS_DUCKDB_MEMORY_LIMIT={memory_limit()} (raise it, or split a large landing file)"
    )


def fault_line(path: str | os.PathLike[str] | None, code: int) -> str:
    """`<path>: <strerror> (<ERRNO NAME>)`, the one line every fault is reported as."""
    name = errno.errorcode.get(code, str(code))
    where = f"{os.fspath(path)}: " if path else ""
    return f"{where}{os.strerror(code)} ({name})"


def fault_in_text(text: str) -> OSError | None:
    """The first fault of the machine reported in `text` (DuckDB or dbt output), as an
    OSError with the path when the text names one."""
    for pattern in _TEXT_PATTERNS:
        match = pattern.search(text)
        if match:
            code = _BY_MESSAGE[match.group("message")]
            path = match.groupdict().get("path")
            return (
                OSError(code, os.strerror(code), path) if path else OSError(code, os.strerror(code))
            )
    return None


@contextmanager
def about(path: str | os.PathLike[str]) -> Iterator[None]:
    """Name `path` in an OSError raised without a file name (a write to an open file), so
    the fault's line says where."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, os.fspath(path)) from exc
        raise


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _from_duckdb(exc: BaseException) -> bool:
    return type(exc).__module__.lstrip("_").startswith("duckdb")


def machine_fault(exc: BaseException) -> str | None:
    """One line for a fault of the machine behind `exc` (or what caused it), else None.

    Text is read only from DuckDB's errors: elsewhere "Permission denied" may be a
    provider's answer, not the machine's."""
    for link in _chain(exc):
        if isinstance(link, OSError) and link.errno in FAULT_ERRNOS:
            # A copy or rename names its source first; the fault is at the destination.
            return fault_line(link.filename2 or link.filename, link.errno)
    for link in _chain(exc):
        if isinstance(link, OutOfMemory):
            return str(link)
        if isinstance(link, MemoryError):
            return "out of memory (MemoryError)"
        if _from_duckdb(link):
            found = fault_in_text(str(link))
            if found is not None:
                return fault_line(found.filename, found.errno)
            memory = out_of_memory_in_text(str(link))
            if memory is not None:
                return str(memory)
    return None


def one_line(exc: BaseException) -> str | None:
    """The line a command prints instead of a traceback: a busy warehouse (naming who holds
    it) or a fault of the machine; None for anything else (a bug keeps its traceback)."""
    for link in _chain(exc):
        if isinstance(link, WarehouseBusyError):
            return str(link)
    return machine_fault(exc)
