"""The self-contained BI dashboard: one HTML file that opens with no network.

`queries` reads the warehouse (read-only SQL, tolerant of tables that do not exist yet),
`charts` turns rows into plotly figures, and `dashboard.build_dashboard` writes the page with
plotly.js embedded exactly once.
"""

from pipelines.lib.reporting.dashboard import SECTIONS, DashboardResult, build_dashboard

__all__ = ["SECTIONS", "DashboardResult", "build_dashboard"]
