"""Another process holding the warehouse, for tests of waiting and one-line busy messages."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HOLDER_COMMAND = "bis run --as-of 2026-11-24T09:30:00Z"
# Holds the data dir's run lock as `bis run` does, until its stdin closes.
HOLD_RUN_LOCK = (
    "import sys; from pathlib import Path; from pipelines.lib.runlock import run_lock\n"
    f"with run_lock(Path(sys.argv[1]), {HOLDER_COMMAND!r}):\n"
    "    print('held', flush=True); sys.stdin.read()\n"
)
# Holds DuckDB's own lock on a warehouse file, as an analyst's session does.
HOLD_DUCKDB = (
    "import sys, duckdb; con = duckdb.connect(sys.argv[1])\n"
    "print('held', flush=True); sys.stdin.read(); con.close()\n"
)


@contextmanager
def holding(target: Path, script: str = HOLD_RUN_LOCK) -> Iterator[subprocess.Popen[str]]:
    """A process running `script` on `target` (a data dir, or a warehouse file for
    HOLD_DUCKDB), started and holding when this yields; killed with SIGKILL on exit, so no
    clean-up of its own runs (the kernel drops its locks)."""
    process = subprocess.Popen(
        [sys.executable, "-c", script, str(target)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "held"
        yield process
    finally:
        process.kill()
        process.wait(timeout=30)
