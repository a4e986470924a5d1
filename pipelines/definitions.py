"""The one Definitions entry point (workspace.yaml points here)."""

import dagster as dg

from pipelines.defs import dbt, ingest, messaging, reporting
from pipelines.defs.resources import default_resources

defs = dg.Definitions.merge(
    ingest.defs,
    dbt.defs,
    messaging.defs,
    reporting.defs,
    dg.Definitions(resources=default_resources()),
)
