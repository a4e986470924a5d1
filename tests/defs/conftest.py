"""The Dagster definitions load dbt's manifest: make sure it matches the project first.

Loading the definitions never parses the project itself (outside `dagster dev`), so a test
run after a model edit would otherwise see the models as they were.
"""

from __future__ import annotations

import pytest

from pipelines.lib.dbt_manifest import ensure_manifest


@pytest.fixture(scope="session", autouse=True)
def fresh_manifest() -> None:
    ensure_manifest()
