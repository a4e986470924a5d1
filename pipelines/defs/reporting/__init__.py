"""Reporting: exports and the dashboard."""

import dagster as dg

from pipelines.defs.reporting.assets import dashboard, user_progress_export

defs = dg.Definitions(assets=[dashboard, user_progress_export])
