"""One writer of the warehouse at a time, across processes: the run lock.

DuckDB admits one writing process per file, but `bis run` opens the warehouse, closes it,
starts dbt in a subprocess and reopens it: without a lock of its own, a second run (or a
Dagster op) slips in between stages and dbt dies on DuckDB's lock. So every writer takes
`fcntl.flock` on `<data dir>/.bis-run.lock` first: `bis run` and `bis send` for the whole
command, `open_warehouse` for each writing connection, dbt for its subprocess. A waiter
retries with bounded backoff and then gives up with one line naming the holder, whose pid,
command and start time are kept in the file as text. The kernel drops the lock when its
holder dies (even by kill -9), so there is no stale lock to clean up.

The lock is re-entrant within a process (a run's stages take it again while the run holds
it); flock locks belong to the open file, so a second open in the same process would wait
on itself.
"""

from __future__ import annotations

import errno
import fcntl
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipelines.lib.settings import warehouse_wait_seconds

LOCK_FILE = ".bis-run.lock"
WAIT_ENV = "BIS_WAREHOUSE_WAIT"
# The holder's text is written in place into a block of this size: after the file's first
# use, taking the lock needs no disk space, so on a full disk a run fails at its real write.
_RECORD_SIZE = 512
_MAX_DELAY = 2.0


class WarehouseBusyError(RuntimeError):
    """Another process held the warehouse for longer than this one was willing to wait."""


@dataclass(frozen=True)
class Holder:
    """Who holds the run lock, as its holder wrote it."""

    pid: int | None
    command: str
    started: str

    def describe(self) -> str:
        started = f", started {self.started}" if self.started else ""
        pid = f"pid {self.pid}" if self.pid is not None else "pid ?"
        return f"`{self.command or 'a bis command'}` ({pid}{started})"


_wait_override: float | None = None


def wait_seconds() -> float:
    """How long a writer waits for the warehouse: `--wait`, else `$BIS_WAREHOUSE_WAIT`,
    else 10 minutes (a run queued behind another should wait for it, not fail)."""
    if _wait_override is not None:
        return _wait_override
    return warehouse_wait_seconds()


@contextmanager
def waiting(seconds: float | None) -> Iterator[None]:
    """Within the block, writers wait `seconds` (None: the configured default)."""
    global _wait_override
    previous = _wait_override
    if seconds is not None:
        if seconds < 0 or seconds != seconds:  # NaN compares unequal to itself
            raise ValueError(f"--wait {seconds} must be zero or more seconds")
        _wait_override = seconds
    try:
        yield
    finally:
        _wait_override = previous


def lock_path(data_dir: Path) -> Path:
    return Path(data_dir) / LOCK_FILE


def _record(command: str | None) -> bytes:
    """The holder's text, padded to a fixed size; None: the released (blank) record."""
    if command is None:
        return b" " * (_RECORD_SIZE - 1) + b"\n"
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # for the message only
    # One line per field; the command is squashed to one line so the record stays parseable.
    command = " ".join(command.split())[:300]
    text = f"pid {os.getpid()}\ncommand {command}\nstarted {started}\n"
    data = text.encode("utf-8", "replace")[: _RECORD_SIZE - 1]
    return data + b" " * (_RECORD_SIZE - 1 - len(data)) + b"\n"


def parse_holder(text: str) -> Holder | None:
    """The holder record (None when empty or released)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key in ("pid", "command", "started"):
            fields[key] = value.strip()
    if not fields.get("pid"):
        return None
    try:
        pid: int | None = int(fields["pid"])
    except ValueError:
        pid = None
    return Holder(pid=pid, command=fields.get("command", ""), started=fields.get("started", ""))


def read_holder(data_dir: Path) -> Holder | None:
    """The last holder recorded in `data_dir`'s lock file (None if none or unreadable)."""
    try:
        with open(lock_path(data_dir), "rb") as handle:
            return parse_holder(handle.read(_RECORD_SIZE * 2).decode("utf-8", "replace"))
    except OSError:
        return None


def default_command() -> str:
    """What this process is, for the holder record: `bis run`, `dagster …`, `python x.py`."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python"
    return " ".join([name, *sys.argv[1:3]])


@dataclass
class _Held:
    fd: int
    count: int


_held: dict[str, _Held] = {}
_held_guard = threading.Lock()
_acquiring: dict[str, threading.Lock] = {}  # per lock file


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _acquire(
    path: Path, command: str, wait: float, on_wait: Callable[[Holder], None] | None
) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + wait
        delay = 0.05
        told = False
        while not _try_lock(fd):
            holder = read_holder(path.parent) or Holder(None, "", "")
            if time.monotonic() >= deadline:
                raise WarehouseBusyError(
                    f"warehouse busy: {holder.describe()} holds {path}; waited {wait:g}s"
                    f" (--wait SECONDS or {WAIT_ENV} sets how long)"
                )
            if on_wait is not None and not told:
                on_wait(holder)
                told = True
            # Jittered so queued waiters do not retry in lockstep; capped so a freed lock is
            # taken within a couple of seconds.
            time.sleep(min(delay, max(deadline - time.monotonic(), 0.0)) * (0.5 + random.random()))
            delay = min(delay * 2, _MAX_DELAY)
        os.pwrite(fd, _record(command), 0)
        return fd
    except BaseException:
        os.close(fd)  # closing the file releases a lock taken on it
        raise


@contextmanager
def run_lock(
    data_dir: Path,
    command: str | None = None,
    *,
    wait: float | None = None,
    on_wait: Callable[[Holder], None] | None = None,
) -> Iterator[None]:
    """Hold `data_dir`'s run lock for the block, waiting up to `wait` seconds (default:
    `wait_seconds()`) for another holder; WarehouseBusyError names it when time is up.
    `on_wait` is called once if the lock is not free at once (to tell a person why)."""
    path = lock_path(data_dir)
    key = os.path.realpath(path)
    # One thread at a time takes a file lock for this process: two would each open the file
    # and the second would wait on the first (flock belongs to the open file, not the pid).
    with _held_guard:
        acquiring = _acquiring.setdefault(key, threading.Lock())
    with acquiring:
        with _held_guard:
            held = _held.get(key)
            if held is not None:
                held.count += 1
        if held is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = _acquire(
                path,
                command or default_command(),
                wait_seconds() if wait is None else wait,
                on_wait,
            )
            with _held_guard:
                _held[key] = _Held(fd, 1)
    try:
        yield
    finally:
        with _held_guard:
            entry = _held[key]
            entry.count -= 1
            if entry.count == 0:
                del _held[key]
                try:
                    # Blank, so a waiter never names a holder that has gone.
                    os.pwrite(entry.fd, _record(None), 0)
                except OSError:
                    pass  # the record is only for messages; the lock goes with the close
                finally:
                    os.close(entry.fd)
