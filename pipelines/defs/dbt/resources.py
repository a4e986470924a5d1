"""The dbt project (one cached DbtProject) and the dbt CLI resource."""

import os

from dagster_dbt import DbtCliResource, DbtProject

from pipelines.lib.dbt import DBT_PROJECT_DIR, dbt_executable, dbt_target, parse_manifest
from pipelines.lib.settings import load_settings

dbt_project = DbtProject(
    project_dir=DBT_PROJECT_DIR,
    profiles_dir=DBT_PROJECT_DIR,
    target=dbt_target(load_settings()),
)
# `dagster dev` re-parses on load; elsewhere parse once when there is no manifest yet
# (a fresh clone), so the definitions always load.
if os.environ.get("DAGSTER_IS_DEV_CLI") or not dbt_project.manifest_path.exists():
    parse_manifest(load_settings())


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())
