"""dbt's manifest (dbt_project/target/manifest.json), which the Dagster definitions load.

Loading the definitions never parses the project (outside `dagster dev`): `make install`
and `make check` run `python -m pipelines.lib.dbt_manifest`, which parses only when the
manifest is missing or older than a model, macro, test or project file.
"""

from __future__ import annotations

import fcntl
import sys
from pathlib import Path

from pipelines.lib.dbt import DBT_PROJECT_DIR, parse_manifest
from pipelines.lib.settings import Settings, load_settings

MANIFEST = DBT_PROJECT_DIR / "target" / "manifest.json"


def manifest_is_stale(manifest: Path = MANIFEST, project_dir: Path = DBT_PROJECT_DIR) -> bool:
    """No manifest yet (a fresh clone), or a model, macro or project file is newer than it."""
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    sources = [project_dir / "dbt_project.yml", project_dir / "profiles.yml"]
    for folder in ("models", "macros", "tests"):
        sources.extend(p for p in (project_dir / folder).rglob("*") if p.is_file())
    return any(path.stat().st_mtime > built for path in sources)


def ensure_manifest(settings: Settings | None = None) -> bool:
    """`dbt parse` when the manifest is stale; True when it parsed. Processes that call this
    at once (parallel test workers) parse one after the other, and the later ones not at all."""
    if not manifest_is_stale():
        return False
    MANIFEST.parent.mkdir(parents=True, exist_ok=True)
    with open(MANIFEST.parent / ".parse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not manifest_is_stale():
            return False
        parse_manifest(settings or load_settings())
    return True


if __name__ == "__main__":
    parsed = ensure_manifest()
    print(f"dbt manifest: {'parsed' if parsed else 'up to date'} ({MANIFEST})", file=sys.stderr)
