"""The run lock, the one-line faults of the machine, and writers that never leave half a file.

The real `bis` commands are exercised in tests/test_machine_faults.py; these are the pieces,
fast and in process (other processes only where a lock must be held by someone else).
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from pipelines.cli import main
from pipelines.lib import dbt, runlock
from pipelines.lib.faults import about, machine_fault, one_line
from pipelines.lib.runlock import (
    LOCK_FILE,
    Holder,
    WarehouseBusyError,
    parse_holder,
    read_holder,
    run_lock,
    wait_seconds,
    waiting,
)
from pipelines.lib.settings import Settings
from pipelines.lib.warehouse import WarehouseLockedError, locked_error
from tests.support.holders import HOLD_DUCKDB, holding

ROOT = Path(__file__).resolve().parents[2]
T = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)

PROBE = (
    "import sys; from pathlib import Path\n"
    "from pipelines.lib.runlock import WarehouseBusyError, run_lock\n"
    "try:\n"
    "    with run_lock(Path(sys.argv[1]), 'probe', wait=0): print('acquired')\n"
    "except WarehouseBusyError as exc: print(exc)\n"
)


def probe(data_dir: Path) -> str:
    return subprocess.run(
        [sys.executable, "-c", PROBE, str(data_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()


# -- the run lock ------------------------------------------------------------------------


def test_the_lock_is_reentrant_in_a_process_and_exclusive_across_processes(
    tmp_path: Path,
) -> None:
    with run_lock(tmp_path, "bis run"):
        with run_lock(tmp_path, "bis run (a stage)", wait=0):  # a stage inside the run
            assert probe(tmp_path).startswith(f"warehouse busy: `bis run` (pid {os.getpid()},")
        # The inner exit did not release the outer hold.
        assert probe(tmp_path).startswith("warehouse busy: `bis run`")
    assert probe(tmp_path) == "acquired"


def test_threads_of_one_process_share_its_hold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Threads entering at the same moment must not wait on each other's file lock."""
    taking = runlock._acquire

    def slowly(*args: object, **kwargs: object) -> int:
        time.sleep(0.05)  # widens the moment between "not held here" and "held"
        return taking(*args, **kwargs)

    monkeypatch.setattr(runlock, "_acquire", slowly)
    threads = 8
    start, inside = threading.Barrier(threads), threading.Barrier(threads)
    errors: list[BaseException] = []

    def enter() -> None:
        try:
            start.wait(timeout=30)
            with run_lock(tmp_path, "bis run", wait=1):
                inside.wait(timeout=10)  # all of them hold it at once
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    workers = [threading.Thread(target=enter) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert errors == []
    assert probe(tmp_path) == "acquired"  # released when the last one left


def test_a_waiter_names_the_holder_then_gets_the_lock_when_it_is_released(
    tmp_path: Path,
) -> None:
    seen: list[Holder] = []
    with holding(tmp_path) as other:

        def release(found: Holder) -> None:
            seen.append(found)
            other.stdin.close()  # the holder finishes while we wait

        with run_lock(tmp_path, "bis send", wait=120, on_wait=release):
            assert read_holder(tmp_path).command == "bis send"
    assert len(seen) == 1
    assert (seen[0].pid, seen[0].command) == (other.pid, "bis run --as-of 2026-11-24T09:30:00Z")


def test_time_up_is_one_line_naming_the_holder_and_the_lock_file(tmp_path: Path) -> None:
    with (
        holding(tmp_path) as other,
        pytest.raises(WarehouseBusyError) as caught,
        run_lock(tmp_path, "bis send", wait=0.2),
    ):
        pass
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(
        f"warehouse busy: `bis run --as-of 2026-11-24T09:30:00Z` (pid {other.pid}, started "
    )
    assert f"holds {tmp_path / LOCK_FILE}; waited 0.2s" in message


def test_a_holder_killed_with_sigkill_leaves_no_stale_lock(tmp_path: Path) -> None:
    with holding(tmp_path) as other:
        other.kill()  # no clean-up code runs
        other.wait(timeout=30)
        with run_lock(tmp_path, "bis run", wait=0):  # at once: the kernel dropped it
            assert read_holder(tmp_path).pid == os.getpid()


def test_the_holder_record_is_fixed_size_and_blank_once_released(tmp_path: Path) -> None:
    """Written in place: after the first use taking the lock needs no disk space, so on a
    full disk a run fails at its real write, not at the lock."""
    with run_lock(tmp_path, "bis run " + "x" * 5000):
        assert (tmp_path / LOCK_FILE).stat().st_size == 512
        assert read_holder(tmp_path).pid == os.getpid()
    assert (tmp_path / LOCK_FILE).stat().st_size == 512
    assert read_holder(tmp_path) is None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", None),
        (" " * 511 + "\n", None),
        ("pid 12\ncommand bis run\nstarted 2026-11-24T09:30:00Z\n", "`bis run` (pid 12, started"),
        ("pid twelve\ncommand bis run\n", "`bis run` (pid ?)"),
        ("\x00\xff garbage", None),
    ],
)
def test_a_damaged_holder_record_still_gives_a_message(text: str, expected: str | None) -> None:
    parsed = parse_holder(text)
    if expected is None:
        assert parsed is None
    else:
        assert parsed is not None and parsed.describe().startswith(expected)


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "1e"])
def test_a_bad_wait_setting_names_the_variable(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIS_WAREHOUSE_WAIT", value)
    with pytest.raises(ValueError, match="BIS_WAREHOUSE_WAIT"):
        wait_seconds()


def test_wait_comes_from_the_flag_then_the_environment_then_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BIS_WAREHOUSE_WAIT", raising=False)
    assert wait_seconds() == 600
    monkeypatch.setenv("BIS_WAREHOUSE_WAIT", "30")
    assert wait_seconds() == 30
    with waiting(2.5):
        assert wait_seconds() == 2.5
        with waiting(None):
            assert wait_seconds() == 2.5
    assert wait_seconds() == 30


@pytest.mark.parametrize("value", ["-1", "abc", "nan"])
def test_a_bad_wait_flag_is_refused(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["run", "--wait", value])
    assert caught.value.code == 2
    assert "--wait" in capsys.readouterr().err


# -- faults of the machine as one line --------------------------------------------------


@pytest.mark.parametrize(
    "code, name",
    [
        (errno.ENOSPC, "ENOSPC"),
        (errno.EDQUOT, "EDQUOT"),
        (errno.EFBIG, "EFBIG"),
        (errno.EROFS, "EROFS"),
        (errno.EACCES, "EACCES"),
        (errno.EPERM, "EPERM"),
        (errno.EIO, "EIO"),
    ],
)
def test_each_fault_of_the_machine_is_one_line_with_path_and_errno(code: int, name: str) -> None:
    exc = OSError(code, os.strerror(code), "/data/warehouse.duckdb.wal")
    assert machine_fault(exc) == f"/data/warehouse.duckdb.wal: {os.strerror(code)} ({name})"


def _raised(make: Callable[[], None]) -> BaseException:
    try:
        make()
    except BaseException as exc:  # the test inspects whatever was raised
        return exc
    raise AssertionError("nothing raised")


def _wrapped() -> None:
    try:
        raise OSError(errno.ENOSPC, "No space left on device", "/data/reports/dashboard.html")
    except OSError as exc:
        raise RuntimeError("stage failed") from exc


def _during_cleanup() -> None:
    try:
        raise OSError(errno.EROFS, "Read-only file system", "/data/outbox/x.eml")
    except OSError:
        raise ValueError("rollback failed too") from None


@pytest.mark.parametrize(
    "exc, line",
    [
        # A copy names its source first; the fault is at the destination.
        (
            OSError(errno.ENOSPC, "No space left on device", "/src/p", None, "/data/dbt_state/p"),
            "/data/dbt_state/p: No space left on device (ENOSPC)",
        ),
        (_raised(_wrapped), "/data/reports/dashboard.html: No space left on device (ENOSPC)"),
        (_raised(_during_cleanup), "/data/outbox/x.eml: Read-only file system (EROFS)"),
        (
            duckdb.IOException(
                'IO Error: Could not write file "/d/w.duckdb.wal": No space left on device'
            ),
            "/d/w.duckdb.wal: No space left on device (ENOSPC)",
        ),
        (
            duckdb.TransactionException(
                'TransactionContext Error: Failed to commit: Could not write file "/d/w.duckdb":'
                " Disk quota exceeded"
            ),
            "/d/w.duckdb: Disk quota exceeded (EDQUOT)",
        ),
        (
            duckdb.FatalException(
                "FATAL Error: Failed: database has been invalidated because of a previous fatal"
                ' error. Original error: "Could not write file "/d/w.duckdb": File too large"'
            ),
            "/d/w.duckdb: File too large (EFBIG)",
        ),
        (
            duckdb.IOException(
                'IO Error: Cannot open file "/d/w.duckdb.wal": Read-only file system'
            ),
            "/d/w.duckdb.wal: Read-only file system (EROFS)",
        ),
    ],
)
def test_a_fault_is_found_through_wrapping_and_in_duckdb_text(
    exc: BaseException, line: str
) -> None:
    assert machine_fault(exc) == line
    assert one_line(exc) == line


@pytest.mark.parametrize(
    "exc",
    [
        FileNotFoundError(errno.ENOENT, "No such file or directory", "/data/x"),
        ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
        ValueError("not an ISO 8601 timestamp"),
        RuntimeError("SendGrid 403: Permission denied"),  # a provider's words, not the disk's
        duckdb.CatalogException("Catalog Error: Table with name dim_users does not exist!"),
    ],
)
def test_other_errors_are_not_called_faults_of_the_machine(exc: BaseException) -> None:
    assert machine_fault(exc) is None
    assert one_line(exc) is None


DUCKDB_OUT_OF_MEMORY = (
    "Out of Memory Error: failed to pin block of size 256.0 KiB (976.0 KiB/976.5 KiB used)\n"
    "\nPossible solutions:\n* Reducing the number of threads (SET threads=X)\n"
)


def test_running_out_of_memory_is_one_line_naming_the_limit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BIS_DUCKDB_MEMORY_LIMIT", "1MB")
    expected = (
        "DuckDB ran out of memory: failed to pin block of size 256.0 KiB (976.0 KiB/976.5 KiB"
        " used); its limit is BIS_DUCKDB_MEMORY_LIMIT=1MB (raise it, or split a large landing"
        " file)"
    )
    assert one_line(duckdb.OutOfMemoryException(DUCKDB_OUT_OF_MEMORY)) == expected
    in_dbt = dbt._machine_trouble(
        _settings(tmp_path), 1, "Runtime Error\n  " + DUCKDB_OUT_OF_MEMORY
    )
    assert str(in_dbt) == expected and one_line(in_dbt) == expected
    assert one_line(MemoryError()) == "out of memory (MemoryError)"


def test_a_busy_warehouse_is_one_line_even_when_wrapped() -> None:
    def wrapped() -> None:
        try:
            raise WarehouseBusyError("warehouse busy: `bis run` (pid 1) holds /d/.bis-run.lock")
        except WarehouseBusyError as exc:
            raise RuntimeError("stage") from exc

    assert one_line(_raised(wrapped)) == "warehouse busy: `bis run` (pid 1) holds /d/.bis-run.lock"


def test_about_names_the_path_only_where_the_error_has_none() -> None:
    with pytest.raises(OSError) as caught, about("/data/reports/dashboard.html"):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert caught.value.filename == "/data/reports/dashboard.html"
    assert caught.value.errno == errno.ENOSPC
    with pytest.raises(OSError) as caught, about("/elsewhere"):
        raise OSError(errno.EROFS, "Read-only file system", "/data/outbox/x.eml")
    assert caught.value.filename == "/data/outbox/x.eml"


# -- dbt: its lock and its faults ---------------------------------------------------------

# The end of dbt's output when another process held the warehouse (captured from a real run).
DBT_LOCKED = """\
  File "/work/main/.venv/lib/python3.11/site-packages/dbt/adapters/duckdb/environments/__init__.py", line 164, in initialize_db
    conn = duckdb.connect(creds.path, read_only=False, config=config)
           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
_duckdb.IOException: IO Error: Could not set lock on file "{path}": Conflicting lock is held in /usr/bin/python3.11 (PID {pid}). See also https://duckdb.org/docs/current/connect/concurrency
"""  # noqa: E501
# dbt's output when the disk filled during the build (captured from a real run).
DBT_DISK_FULL = """\
[0m11:35:58    Runtime Error in model stg_segment__events (models/staging/segment/stg_segment__events.sql)
  TransactionContext Error: Failed to commit: Could not write file "{path}.wal": No space left on device
"""  # noqa: E501
DBT_MODEL_FAILED = """\
[0m11:35:58    Failure in test not_null_dim_users_user_id (models/marts/schema.yml)
  Got 3 results, configured to fail if != 0
"""


def _settings(tmp_path: Path) -> Settings:
    return Settings(env="dev", data_dir=tmp_path)


def test_dbt_failing_on_the_lock_is_one_line_naming_the_holder(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    output = DBT_LOCKED.format(path=settings.warehouse_path, pid=4242)
    trouble = dbt._machine_trouble(settings, 2, output)
    assert isinstance(trouble, WarehouseLockedError)
    assert "\n" not in str(trouble)
    assert str(trouble).startswith("warehouse busy: pid 4242 (`")
    assert f"holds {settings.warehouse_path}" in str(trouble)


def test_a_duckdb_lock_held_by_a_bis_command_names_the_command(tmp_path: Path) -> None:
    with run_lock(tmp_path, "bis run --as-of 2026-11-24T09:30:00Z"):
        text = DBT_LOCKED.format(path=tmp_path / "warehouse.duckdb", pid=os.getpid())
        message = str(locked_error(tmp_path / "warehouse.duckdb", text, 60))
    assert message.startswith(
        f"warehouse busy: `bis run --as-of 2026-11-24T09:30:00Z` (pid {os.getpid()}, started "
    )
    assert message.endswith("waited 60s (--wait SECONDS or BIS_WAREHOUSE_WAIT sets how long)")


def test_dbt_failing_on_a_full_disk_is_the_fault_not_a_model_failure(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    trouble = dbt._machine_trouble(settings, 1, DBT_DISK_FULL.format(path=settings.warehouse_path))
    assert isinstance(trouble, OSError) and trouble.errno == errno.ENOSPC
    assert trouble.filename == f"{settings.warehouse_path}.wal"
    assert dbt._machine_trouble(settings, 1, DBT_MODEL_FAILED) is None
    assert dbt._machine_trouble(settings, 0, DBT_DISK_FULL) is None


def test_dbt_waits_for_a_duckdb_session_and_then_names_it(tmp_path: Path) -> None:
    """The wait happens before dbt starts (dbt itself would fail at once): bounded, then
    one line naming the session's process."""
    settings = _settings(tmp_path)
    with (
        holding(tmp_path / "warehouse.duckdb", HOLD_DUCKDB) as session,
        waiting(0.3),
        pytest.raises(WarehouseLockedError) as caught,
    ):
        dbt.run_dbt_build(settings, T)
    assert str(caught.value).startswith(f"warehouse busy: pid {session.pid} (`")
    assert "waited 0.3s" in str(caught.value)
    assert not (tmp_path / "dbt_state").exists()  # dbt never ran


# -- writers on a full disk: an error naming the path, and nothing half-written ---------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB file system of its own (a tmpfs), unmounted after the test."""
    where = tmp_path / "disk"
    where.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
        check=True,
        capture_output=True,
    )
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


def _fill(folder: Path) -> None:
    with (folder / "filler").open("wb", buffering=0) as handle:
        for chunk in (1 << 16, 512):
            try:
                while True:
                    handle.write(b"\0" * chunk)
            except OSError:
                pass


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "filler"
    }


def _outbox_message(disk: Path) -> None:
    from pipelines.lib.email.outbox import write_once

    write_once(disk / "2026-11-24" / "0123456789abcdef.eml", b"Subject: hi\r\n\r\n" * 800)


def _dashboard_or_flags(disk: Path) -> None:
    from pipelines.lib.atomic_files import atomic_write_text

    atomic_write_text(disk / "dashboard.html", "<html>new</html>" * 2000)


def _dbt_parse_cache(disk: Path) -> None:
    produced = disk.parent / "target"
    produced.mkdir(exist_ok=True)
    (produced / dbt.PARTIAL_PARSE_FILE).write_bytes(b"p" * 200_000)
    dbt._keep_partial_parse(Settings(env="dev", data_dir=disk), produced)


def _progress_export(disk: Path) -> None:
    from pipelines.lib.user_metrics import export_user_progress

    con = duckdb.connect()
    con.execute("create schema marts")
    con.execute(
        "create table marts.user_progress as select 'u' || i as user_id, 2 as steps_completed,"
        " 'First Project Created' as next_step_name, 50.0::double as percent_complete,"
        " 3 as active_days_last_7, 1 as current_streak_days, 40.0::double as progress_percentile"
        " from range(5000) r(i)"
    )
    export_user_progress(con, disk / "exports" / "user_progress.jsonl")


def _sample_file(disk: Path) -> None:
    from pipelines.lib.sample_data import generate_sample

    with about(disk / "landing"):  # as `bis generate` names its folder
        generate_sample(out_dir=disk / "landing", end_at=T, users=300, days=5, progress=False)


def _prepare(disk: Path) -> None:
    """What is there before the disk fills: earlier versions that must survive intact."""
    (disk / "2026-11-24").mkdir()
    (disk / "dashboard.html").write_text("<html>old</html>")
    (disk / "dbt_state").mkdir()
    (disk / "dbt_state" / dbt.PARTIAL_PARSE_FILE).write_bytes(b"old cache")
    (disk / "exports").mkdir()
    (disk / "exports" / "user_progress.jsonl").write_text('{"user_id": "old"}\n')
    (disk / "landing").mkdir()


@needs_root
@pytest.mark.parametrize(
    "write",
    [_outbox_message, _dashboard_or_flags, _dbt_parse_cache, _progress_export, _sample_file],
)
def test_a_full_disk_fails_the_write_naming_the_path_and_leaves_nothing_half_written(
    small_disk: Path, write: Callable[[Path], None]
) -> None:
    _prepare(small_disk)
    before = _snapshot(small_disk)
    _fill(small_disk)
    with pytest.raises(OSError) as caught:
        write(small_disk)
    assert caught.value.errno == errno.ENOSPC
    line = machine_fault(caught.value)
    assert line is not None and line.startswith(str(small_disk)), line
    assert line.endswith(": No space left on device (ENOSPC)"), line
    assert _snapshot(small_disk) == before  # old versions intact, no temp or partial file
