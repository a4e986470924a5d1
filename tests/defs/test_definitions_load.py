"""Loading the definitions has no side effects: no file written, no process started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# Runs in a fresh interpreter, so every module of ours is imported for real. The libraries
# are imported first (Dagster's vendored croniter runs `file` at import: not ours to judge);
# then starting a process (dbt parse included) or opening a file for writing raises. Prints
# the asset keys. (Watching mtimes instead would race with other processes running dbt.)
PROBE = """
import builtins, io, json, os, subprocess
import dagster, dagster_dbt, duckdb

def refuse(*args, **kwargs):
    raise AssertionError(f"a process was started while loading: {args[1:2]}")

def guarded_open(file, mode="r", *args, **kwargs):
    if any(flag in mode for flag in "wax+"):
        raise AssertionError(f"a file was opened for writing while loading: {file}")
    return plain_open(file, mode, *args, **kwargs)

def guarded_os_open(path, flags, *args, **kwargs):
    if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND):
        raise AssertionError(f"a file was opened for writing while loading: {path}")
    return plain_os_open(path, flags, *args, **kwargs)

plain_open, plain_os_open = io.open, os.open
builtins.open = io.open = guarded_open
os.open = guarded_os_open
subprocess.Popen.__init__ = refuse
os.fork = os.posix_spawn = os.system = refuse
import pipelines.definitions as module

keys = module.defs.resolve_asset_graph().get_all_asset_keys()
print(json.dumps(sorted(key.to_user_string() for key in keys)))
"""


def _files(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def test_importing_the_definitions_writes_nothing_and_starts_nothing(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "BIS_ENV": "dev",
        "BIS_DATA_DIR": str(tmp_path / "data"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    env.pop("DAGSTER_IS_DEV_CLI", None)  # `dagster dev` alone parses (prepare_if_dev)
    completed = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=tmp_path,  # the working dir, the data dir and the Dagster home stay empty
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assets = json.loads(completed.stdout.splitlines()[-1])
    assert "raw_events" in assets and "marts/kpi_daily" in assets
    assert _files(tmp_path) == []
