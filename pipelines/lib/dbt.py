"""Running the dbt project from Python, without Dagster: paths, target, vars, build."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pipelines.lib.settings import PROJECT_ROOT, Settings

DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"


def dbt_target(settings: Settings) -> str:
    """The dbt target for the environment (profiles.yml has one output per BIS_ENV)."""
    return os.environ.get("BIS_DBT_TARGET", "").strip() or settings.env


def dbt_vars(as_of: datetime) -> dict[str, object]:
    """Vars every dbt invocation gets: the pipeline clock, and the sequences' goals and holdout
    shares for the experiment models (so editing a sequence file needs no SQL change)."""
    from pipelines.lib.sequences import load_sequences
    from pipelines.lib.sequences.goals import experiment_vars
    from pipelines.lib.settings import SEQUENCES_DIR

    return {"as_of": as_of.isoformat(), **experiment_vars(load_sequences(SEQUENCES_DIR))}


def dbt_env(settings: Settings) -> dict[str, str]:
    """dbt runs with cwd=dbt_project, so it needs the data dir as an absolute path."""
    return {"BIS_DATA_DIR": str(settings.data_dir)}


def dbt_args(command: str, settings: Settings, as_of: datetime, *extra: str) -> list[str]:
    return [
        command,
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target",
        dbt_target(settings),
        "--vars",
        json.dumps(dbt_vars(as_of)),
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


def _run_dbt(settings: Settings, args: list[str], target_path: Path | None) -> tuple[int, str]:
    """dbt in a subprocess: dbt-duckdb keeps the database open for the life of its process."""
    extra = ["--target-path", str(target_path)] if target_path else []
    completed = subprocess.run(
        [dbt_executable(), *args, *extra],
        cwd=DBT_PROJECT_DIR,
        capture_output=True,
        text=True,
        env={**os.environ, **dbt_env(settings)},
        check=False,
    )
    return completed.returncode, completed.stdout + completed.stderr


def parse_manifest(settings: Settings) -> None:
    """`dbt parse`: writes target/manifest.json, which the Dagster definitions load."""
    code, output = _run_dbt(
        settings,
        [
            "parse",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target",
            dbt_target(settings),
        ],
        None,
    )
    if code != 0:
        raise RuntimeError(f"dbt parse failed in {DBT_PROJECT_DIR}:\n{output[-4000:]}")


def run_dbt_build(settings: Settings, as_of: datetime, *extra: str) -> DbtBuildResult:
    """`dbt build` (models, data tests, unit tests) at the pipeline clock."""
    with tempfile.TemporaryDirectory(prefix="bis-dbt-") as scratch:
        code, output = _run_dbt(
            settings, dbt_args("build", settings, as_of, *extra), Path(scratch) / "target"
        )
        results_path = Path(scratch) / "target" / "run_results.json"
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
