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


def manifest_is_stale() -> bool:
    """No manifest yet (a fresh clone), or a model, macro or project file is newer than it."""
    manifest = dbt_project.manifest_path
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    sources = [DBT_PROJECT_DIR / "dbt_project.yml", DBT_PROJECT_DIR / "profiles.yml"]
    for folder in ("models", "macros", "tests"):
        sources.extend(p for p in (DBT_PROJECT_DIR / folder).rglob("*") if p.is_file())
    return any(path.stat().st_mtime > built for path in sources)


# `dagster dev` re-parses on load; elsewhere parse when the manifest is missing or older
# than the project, so the definitions never show a stale set of models.
if os.environ.get("DAGSTER_IS_DEV_CLI") or manifest_is_stale():
    parse_manifest(load_settings())


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())
