"""The dbt project and the dbt CLI resource.

Loading these definitions runs nothing: under `dagster dev` dagster-dbt's `prepare_if_dev`
parses the project (so edits show up on reload); elsewhere the manifest comes from
`make install` / `make check` (`python -m pipelines.lib.dbt_manifest`), or a deploy step.
"""

import json

from dagster_dbt import DbtCliResource, DbtProject

from pipelines.lib.dbt import DBT_PROJECT_DIR, dbt_executable, dbt_vars
from pipelines.lib.settings import is_set


def _prepare_args() -> list[str] | None:
    """`dbt parse` with the vars every build passes, so builds reuse its partial parse; only
    computed under `dagster dev` (it reads the sequences), the one place that parses."""
    if not is_set("DAGSTER_IS_DEV_CLI"):
        return None
    return ["parse", "--quiet", "--vars", json.dumps(dbt_vars())]


dbt_project = DbtProject(
    project_dir=DBT_PROJECT_DIR,
    profiles_dir=DBT_PROJECT_DIR,
    prepare_project_cli_args=_prepare_args(),
)
dbt_project.prepare_if_dev()


def dbt_resource() -> DbtCliResource:
    # The target is profiles.yml's default, which follows BIS_WAREHOUSE_URL: the dbt asset
    # starts dbt with `dbt_env` (the engine's output and where the warehouse is).
    return DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())
