"""Running the dbt project from Python, without Dagster: paths, target, vars, build."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from pipelines.lib import shadow_marts
from pipelines.lib.atomic_files import atomic_output
from pipelines.lib.faults import fault_in_text, out_of_memory_in_text
from pipelines.lib.runlock import run_lock
from pipelines.lib.settings import (
    PROJECT_ROOT,
    Settings,
    subprocess_environ,
    temporary_environ,
)
from pipelines.lib.warehouse import connect, is_lock_text, locked_error, taking_turns

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
# Unit tests check SQL logic on fixed inputs: CI runs them, production builds leave them out.
SKIP_UNIT_TESTS = ("--exclude-resource-type", "unit_test")
PARTIAL_PARSE_FILE = "partial_parse.msgpack"


def dbt_target(settings: Settings) -> str:
    """The dbt output for the warehouse's engine: `BIS_WAREHOUSE_URL` is the one place that
    says where the warehouse is, for dbt as for the pipeline (profiles.yml has one output per
    engine, filled in from the URL by `dbt_env`)."""
    return "postgres" if settings.warehouse.is_postgres else "duckdb"


def dbt_vars() -> dict[str, object]:
    """Vars every dbt invocation gets: the sequences' goals and holdout shares for the
    experiment models (so editing a sequence file needs no SQL change). They change only when
    a sequence does; the clock travels in `BIS_AS_OF` (`dbt_env`), because a change of vars
    makes dbt re-parse the whole project."""
    from pipelines.lib.sequences import load_sequences
    from pipelines.lib.sequences.goals import experiment_vars
    from pipelines.lib.settings import SEQUENCES_DIR

    return experiment_vars(load_sequences(SEQUENCES_DIR))


def dbt_env(settings: Settings, as_of: datetime | None = None) -> dict[str, str]:
    """The variables profiles.yml reads: the target and the warehouse's place from
    `BIS_WAREHOUSE_URL` (absolute, since dbt runs with cwd=dbt_project), and the pipeline clock
    in `BIS_AS_OF` (read by the `as_of()` macro)."""
    url = settings.warehouse
    env = {"BIS_DATA_DIR": str(settings.data_dir), "BIS_DBT_TARGET": dbt_target(settings)}
    if url.is_postgres:
        env.update(
            BIS_PG_HOST=url.host,
            BIS_PG_PORT=str(url.port),
            BIS_PG_USER=url.user,
            BIS_PG_PASSWORD=url.password,
            BIS_PG_DATABASE=url.database,
            # The marts are built in a shadow schema, swapped in after (shadow_marts.py).
            BIS_DBT_MARTS_SCHEMA=shadow_marts.BUILD_SCHEMA,
        )
    else:
        env["BIS_DUCKDB_PATH"] = str(url.path)
    if as_of is not None:
        env["BIS_AS_OF"] = as_of.isoformat()
    return env


def dbt_args(command: str, settings: Settings, *extra: str) -> list[str]:
    return [
        command,
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target",
        dbt_target(settings),
        "--vars",
        json.dumps(dbt_vars()),
        *extra,
    ]


def dbt_executable() -> str:
    """The dbt next to this Python (the venv's), so an unactivated venv still works."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else "dbt"


@dataclass(frozen=True)
class DbtBuildResult:
    success: bool
    counts: dict[str, int]  # status -> nodes (success, error, fail, warn, skipped, pass)
    failures: list[str]  # "node: message" for every node that did not pass
    output: str


def _run_dbt(
    settings: Settings, args: list[str], target_path: Path | None, as_of: datetime | None = None
) -> tuple[int, str]:
    """dbt in a subprocess: dbt-duckdb keeps the database open for the life of its process."""
    extra = ["--target-path", str(target_path)] if target_path else []
    completed = subprocess.run(
        [dbt_executable(), *args, *extra],
        cwd=DBT_PROJECT_DIR,
        capture_output=True,
        text=True,
        env=subprocess_environ(dbt_env(settings, as_of)),
        check=False,
    )
    return completed.returncode, completed.stdout + completed.stderr


def _parse_cache(settings: Settings) -> Path:
    """dbt's partial-parse state for this data dir, kept between runs: a run then re-parses
    only the files that changed (a full parse costs ~5 s)."""
    return settings.data_dir / "dbt_state" / PARTIAL_PARSE_FILE


def _seed_partial_parse(settings: Settings, target_path: Path) -> None:
    cached = _parse_cache(settings)
    if cached.exists():
        target_path.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached, target_path / PARTIAL_PARSE_FILE)


def _keep_partial_parse(settings: Settings, target_path: Path) -> None:
    """Runs may overlap (each has its own target dir): the cache is replaced atomically."""
    produced = target_path / PARTIAL_PARSE_FILE
    if not produced.exists():
        return
    cached = _parse_cache(settings)
    cached.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(cached) as out, produced.open("rb") as source:
        shutil.copyfileobj(source, out)


def parse_manifest(settings: Settings) -> None:
    """`dbt parse`: writes target/manifest.json, which the Dagster definitions load, and the
    partial-parse state that dagster-dbt copies into each run (same vars, so it is reused)."""
    code, output = _run_dbt(settings, dbt_args("parse", settings), None)
    if code != 0:
        raise RuntimeError(f"dbt parse failed in {DBT_PROJECT_DIR}:\n{output[-4000:]}")


@contextmanager
def clock_env(as_of: datetime) -> Iterator[None]:
    """`BIS_AS_OF` set only while a dbt subprocess is started (dagster-dbt passes the current
    environment and has no other way in); restored after, so the process clock is untouched."""
    with temporary_environ({"BIS_AS_OF": as_of.isoformat()}):
        yield


def wait_until_writable(path: Path) -> None:
    """Wait (bounded, `runlock.wait_seconds()`) until no other process holds DuckDB's lock on
    the warehouse, e.g. an analyst's session: dbt itself would fail on it at once."""
    # Other errors are not a lock conflict (connect waits those out): dbt reports them itself.
    with contextlib.suppress(duckdb.Error):
        connect(path).close()


def _machine_trouble(settings: Settings, code: int, output: str) -> Exception | None:
    """A failed dbt run's cause when it is the machine's, not the models': a lock conflict
    (WarehouseLockedError naming the holder) or a fault such as a full disk (OSError)."""
    if code == 0:
        return None
    if settings.warehouse.is_duckdb and is_lock_text(output):
        return locked_error(settings.warehouse.path, output, None)
    return fault_in_text(output) or out_of_memory_in_text(output)


def run_dbt_build(settings: Settings, as_of: datetime, *extra: str) -> DbtBuildResult:
    """`dbt build` (models and data tests) at the pipeline clock.

    Unit tests check SQL logic on fixed inputs, not the data: `make test` runs them, and the
    pipeline leaves them out (as dbt recommends for production builds).

    dbt runs under the data dir's run lock (already held inside `bis run`), after waiting out
    any other DuckDB session. A failure caused by the machine is raised as one clear error
    (WarehouseLockedError, or OSError such as ENOSPC) instead of dbt's traceback.
    """
    with run_lock(settings.data_dir), taking_turns(settings.warehouse, "dbt build"):
        if settings.warehouse.is_duckdb:
            wait_until_writable(settings.warehouse.path)
        shadow_marts.prepare(settings.warehouse)
        result = _build(settings, as_of, *extra)
        if result.success:  # readers see every mart of this build at once, or none
            shadow_marts.swap_in(settings.warehouse)
        return result


def _build(settings: Settings, as_of: datetime, *extra: str) -> DbtBuildResult:
    with tempfile.TemporaryDirectory(prefix="bis-dbt-") as scratch:
        target_path = Path(scratch) / "target"
        _seed_partial_parse(settings, target_path)
        code, output = _run_dbt(
            settings,
            dbt_args("build", settings, *SKIP_UNIT_TESTS, *extra),
            target_path,
            as_of,
        )
        trouble = _machine_trouble(settings, code, output)
        if trouble is not None:
            raise trouble
        _keep_partial_parse(settings, target_path)
        results_path = target_path / "run_results.json"
        results = json.loads(results_path.read_text())["results"] if results_path.exists() else []
    counts: dict[str, int] = {}
    failures: list[str] = []
    for node in results:
        counts[node["status"]] = counts.get(node["status"], 0) + 1
        if node["status"] in ("error", "fail", "runtime error"):
            failures.append(f"{node['unique_id']}: {node.get('message')}")
    if code != 0 and not failures:
        failures.append(f"dbt exited {code}:\n{output[-4000:]}")
    return DbtBuildResult(code == 0, counts, failures, output)
