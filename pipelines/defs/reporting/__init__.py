"""Reporting: exports and the dashboard."""

import dagster as dg

from pipelines.defs.reporting.assets import user_progress_export

defs = dg.Definitions(assets=[user_progress_export])
