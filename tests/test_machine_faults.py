"""Faults of the machine, with the real `bis` in a subprocess: one clear line, exit 1, nothing
half-written, and the re-run after the fault is removed completes.

Disk full is a real full tmpfs and read-only a real read-only bind mount, which need root (CI
runs as root); the file-size limit (EFBIG, `ulimit -f`) works for anyone. Every command runs
from this checkout (`python -m pipelines.cli`, cwd = the repository), so the tests exercise
the code next to them.
"""

from __future__ import annotations

import ctypes
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from tests.support.holders import HOLD_DUCKDB, HOLDER_COMMAND, holding

# The whole pipeline with dbt, in subprocesses: not in `make check`.
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
AS_OF = "2026-11-24T09:30:00Z"
NEXT_DAY = "2026-11-25T09:30:00Z"  # due messages that the first day deferred are sent then
# A second landing file (another seed), for runs that have something new to load.
NEW_SAMPLE = ("generate", "--users", "200", "--days", "10", "--seed", "8", "--as-of", AS_OF)
TIMEOUT = 300  # seconds: generous, only so a hang fails instead of blocking the suite
WAIT_0_5 = {"BIS_WAREHOUSE_WAIT": "0.5"}

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="mounting a tmpfs or a read-only bind mount needs root"
)


def _env(data_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BIS_", "SENDGRID_"))}
    env.update({"BIS_DATA_DIR": str(data_dir), "BIS_ENV": "dev", **(extra or {})})
    return env


def _argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", *args]


def bis(
    data_dir: Path,
    *args: str,
    env: dict[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _argv(*args),
        cwd=ROOT,
        env=_env(data_dir, env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        preexec_fn=preexec_fn,
        check=False,
    )


def start(data_dir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        _argv(*args),
        cwd=ROOT,
        env=_env(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The command failed with exactly one line on stdout + stderr: no traceback."""
    text = (result.stdout + result.stderr).strip()
    assert result.returncode == 1, text
    assert len(text.splitlines()) == 1, text
    return text


def ok(result: subprocess.CompletedProcess[str]) -> str:
    text = result.stdout + result.stderr
    assert result.returncode == 0, text
    assert "Traceback" not in text, text
    return text


def query(data_dir: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(data_dir / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def counts(data_dir: Path) -> tuple[int, int]:
    """(landing files ingested, events loaded)."""
    files = query(data_dir, "select count(*) from raw.ingested_files")[0][0]
    events = query(data_dir, "select count(*) from raw.events")[0][0]
    return files, events


def assert_counts_add_up(data_dir: Path) -> None:
    bad = query(
        data_dir,
        "select path from raw.ingested_files"
        " where rows_read <> rows_loaded + rows_rejected + rows_duplicate",
    )
    assert bad == []
    loaded = query(data_dir, "select sum(rows_loaded) from raw.ingested_files")[0][0]
    assert loaded == counts(data_dir)[1]


def leftovers(folder: Path) -> list[Path]:
    """Temp and half-written files: what an atomic write must never leave behind."""
    return [
        path
        for path in folder.rglob("*")
        if path.is_file()
        and path.name not in (".bis-run.lock", "filler")
        and (path.name.startswith(".") or path.suffix in (".tmp", ".partial"))
    ]


def fill(folder: Path) -> Path:
    """Write zeros into `folder` until its file system is full."""
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as handle:  # unbuffered: nothing left to flush
        for chunk in (1 << 20, 4096):
            try:
                while True:
                    handle.write(b"\0" * chunk)
            except OSError:
                pass
    return filler


@contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        check=True,
        capture_output=True,
    )
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


@contextmanager
def read_only_view(source: Path, where: Path) -> Iterator[Path]:
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", str(source), str(where)], check=True, capture_output=True)
    try:
        subprocess.run(
            ["mount", "-o", "remount,bind,ro", str(where)], check=True, capture_output=True
        )
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


@dataclass(frozen=True)
class Built:
    data_dir: Path
    runs: list[str]  # the output of the two runs started together


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """A sample, then two `bis run` started at the same moment on it (the first test's
    subject); the warehouse they leave is the starting point of the other tests."""
    data_dir = tmp_path_factory.mktemp("built") / "data"
    ok(bis(data_dir, "generate", "--users", "200", "--days", "10", "--as-of", AS_OF))
    runs = [start(data_dir, "run", "--as-of", AS_OF) for _ in range(2)]
    outputs = []
    for run in runs:
        out, _ = run.communicate(timeout=TIMEOUT)
        outputs.append(f"exit {run.returncode}\n{out}")
    return Built(data_dir, outputs)


def copy_of(built: Built, where: Path) -> Path:
    shutil.copytree(built.data_dir, where, symlinks=True)
    return where


def test_two_runs_at_once_both_complete_one_after_the_other(built: Built) -> None:
    for output in built.runs:
        assert output.startswith("exit 0\n"), output
        assert "Traceback" not in output and "dbt build: ok" in output, output
    loaded = [int(re.search(r"events loaded: (\d+)", out).group(1)) for out in built.runs]
    # The second waited for the whole first run (dbt included), then found nothing new.
    assert sorted(loaded)[0] == 0
    assert counts(built.data_dir) == (1, sorted(loaded)[1])
    assert_counts_add_up(built.data_dir)
    stuck = query(
        built.data_dir,
        "select count(*) from messaging.sends where status in ('sending', 'unknown', 'failed')",
    )
    assert stuck == [(0,)]


def test_a_busy_warehouse_is_one_line_naming_the_holder(built: Built, tmp_path: Path) -> None:
    data_dir = copy_of(built, tmp_path / "data")
    with holding(data_dir) as holder:  # exits with SIGKILL: the kernel drops the lock
        lock = data_dir / ".bis-run.lock"
        expected = re.compile(
            rf"^bis (run|send): warehouse busy: `{re.escape(HOLDER_COMMAND)}`"
            rf" \(pid {holder.pid}, started \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ\) holds"
            rf" {re.escape(str(lock))}; waited 0\.5s"
        )
        for args, env in [
            (("run", "--as-of", AS_OF, "--wait", "0.5"), None),
            (("send", "--as-of", AS_OF, "--wait", "0.5"), None),
        ]:
            assert expected.match(one_line(bis(data_dir, *args, env=env))), args
        # Readers open the published copy: a writer holding the warehouse never stops them.
        user = _user(data_dir)
        assert user in ok(bis(data_dir, "preview", user, "--as-of", AS_OF, env=WAIT_0_5))
    # No stale lock after a holder killed with -9: the next command goes straight through.
    ok(bis(data_dir, "send", "--as-of", AS_OF, "--wait", "0"))


def test_a_duckdb_session_holding_the_warehouse_is_named_and_waited_for(
    built: Built, tmp_path: Path
) -> None:
    """An analyst's DuckDB session (not a bis command) holds the file."""
    data_dir = copy_of(built, tmp_path / "data")
    warehouse = data_dir / "warehouse.duckdb"
    user = _user(data_dir)
    with holding(warehouse, HOLD_DUCKDB) as session:
        line = one_line(bis(data_dir, "send", "--as-of", AS_OF, env=WAIT_0_5))
        assert f"warehouse busy: pid {session.pid} (`" in line, line
        assert f"not a bis command: a DuckDB session?) holds {warehouse}" in line, line
        # Readers open the published copy, not the file the session holds.
        assert user in ok(bis(data_dir, "user-metrics", user, env=WAIT_0_5))
        waiting = start(data_dir, "send", "--as-of", AS_OF)  # default wait: minutes
        time.sleep(1.0)  # time to meet the lock; on a slow machine it just meets it later
        assert waiting.poll() is None  # neither failed at once nor went ahead
    # The session has ended: the waiting send goes ahead.
    out, _ = waiting.communicate(timeout=TIMEOUT)
    assert waiting.returncode == 0 and "Traceback" not in out, out


@needs_root
def test_disk_full_in_dbt_then_in_ingest_is_one_line_each_and_the_rerun_completes(
    built: Built, tmp_path: Path
) -> None:
    """The disk fills first with nothing new to load (the run's first write is dbt's, in its
    subprocess), then with a new landing file waiting (ingest's write); after each fault
    nothing is half-written, and once space is freed the run completes."""
    with tmpfs(tmp_path / "fs", "64m") as fs:
        data_dir = copy_of(built, fs / "data")
        before = counts(data_dir)
        disk_full = re.compile(
            rf"^bis run: {re.escape(str(data_dir))}/\S+: No space left on device \(ENOSPC\)$"
        )

        filler = fill(fs)
        line = one_line(bis(data_dir, "run", "--as-of", AS_OF))
        assert disk_full.match(line), line
        assert leftovers(data_dir) == []
        filler.unlink()

        ok(bis(data_dir, *NEW_SAMPLE))
        filler = fill(fs)
        line = one_line(bis(data_dir, "run", "--as-of", AS_OF))
        assert disk_full.match(line) and "warehouse.duckdb" in line, line
        assert counts(data_dir) == before  # the file's transaction rolled back
        assert leftovers(data_dir) == []
        filler.unlink()

        assert "dbt build: ok" in ok(bis(data_dir, "run", "--as-of", AS_OF))
        files, events = counts(data_dir)
        assert files == before[0] + 1 and events > before[1]
        assert_counts_add_up(data_dir)


def ledger(data_dir: Path) -> dict[str, int]:
    return dict(query(data_dir, "select status, count(*) from messaging.sends group by 1"))


@needs_root
def test_a_full_outbox_stops_sending_and_the_rerun_sends_the_rest(
    built: Built, tmp_path: Path
) -> None:
    data_dir = copy_of(built, tmp_path / "data")
    written = tmp_path / "outbox_before"
    shutil.copytree(data_dir / "outbox", written)
    with tmpfs(data_dir / "outbox", "2m") as outbox:
        shutil.copytree(written, outbox, dirs_exist_ok=True)
        sent_before = ledger(data_dir)["sent"]
        filler = fill(outbox)

        line = one_line(bis(data_dir, "send", "--as-of", NEXT_DAY))
        assert re.match(
            rf"^bis send: {re.escape(str(outbox))}/[\d-]+/[0-9a-f]+\.eml:"
            r" No space left on device \(ENOSPC\)$",
            line,
        ), line
        after_fault = ledger(data_dir)
        # Not written, so not failed for good, nor left `sending` (which would become
        # `unknown` and never be sent): back to planned.
        assert "failed" not in after_fault and "sending" not in after_fault
        assert after_fault.get("planned", 0) > 0 and after_fault["sent"] == sent_before
        assert leftovers(outbox) == []

        filler.unlink()
        ok(bis(data_dir, "send", "--as-of", NEXT_DAY))
        after = ledger(data_dir)
        assert "planned" not in after and "failed" not in after and "unknown" not in after
        assert after["sent"] >= sent_before + after_fault["planned"]
        assert len(list(outbox.rglob("*.eml"))) == after["sent"]  # one file per sent row


def _file_size_limit() -> None:
    # Far below the warehouse's size, so its next write (its write-ahead log's, as it
    # happens) fails: as on a full disk, mid-command.
    limit = 16 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_file_size_limit_is_one_line_and_the_rerun_completes(
    built: Built, tmp_path: Path
) -> None:
    """`ulimit -f` (EFBIG): the same class as a full disk, and needs no privilege."""
    data_dir = copy_of(built, tmp_path / "data")
    before = ledger(data_dir)

    line = one_line(bis(data_dir, "send", "--as-of", NEXT_DAY, preexec_fn=_file_size_limit))
    assert re.match(
        rf"^bis send: {re.escape(str(data_dir))}/\S+: File too large \(EFBIG\)$", line
    ), line
    assert ledger(data_dir) == before  # rolled back: nothing claimed, nothing lost
    assert leftovers(data_dir) == []

    ok(bis(data_dir, "send", "--as-of", NEXT_DAY))
    after = ledger(data_dir)
    assert after["sent"] > before["sent"]
    assert not {"planned", "sending", "failed", "unknown"} & set(after)


def _user(data_dir: Path) -> str:
    return query(data_dir, "select min(user_id) from marts.dim_users")[0][0]


@needs_root
def test_a_read_only_data_folder_is_one_line_for_writers_and_readable(
    built: Built, tmp_path: Path
) -> None:
    source = copy_of(built, tmp_path / "data")
    user = _user(source)
    with read_only_view(source, tmp_path / "ro") as data_dir:
        lock = data_dir / ".bis-run.lock"
        for args in (("run", "--as-of", AS_OF), ("send", "--as-of", AS_OF)):
            line = one_line(bis(data_dir, *args))
            assert line == f"bis {args[0]}: {lock}: Read-only file system (EROFS)", line
        assert user in ok(bis(data_dir, "user-metrics", user))  # readers still work
        assert user in ok(bis(data_dir, "preview", user))


def _without_permission_override() -> None:
    """Root ignores permission bits through CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH: drop
    them from the bounding set, so the command exec'd next runs without them."""
    if os.geteuid() != 0:
        return  # the permission bits apply already
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _set_writable(folder: Path, writable: bool) -> None:
    for path in [folder, *folder.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode | 0o200 if writable else mode & ~0o222)


def test_a_data_folder_without_write_permission_is_one_line(built: Built, tmp_path: Path) -> None:
    data_dir = copy_of(built, tmp_path / "data")
    _set_writable(data_dir, False)  # chmod -R a-w
    try:
        line = one_line(
            bis(data_dir, "run", "--as-of", AS_OF, preexec_fn=_without_permission_override)
        )
    finally:
        _set_writable(data_dir, True)
    assert line == f"bis run: {data_dir}/.bis-run.lock: Permission denied (EACCES)", line
