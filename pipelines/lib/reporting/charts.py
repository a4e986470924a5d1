"""Plotly figures for the dashboard. Each returns None when there is nothing to draw."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import plotly.graph_objects as go

from pipelines.lib.kpis import HEADLINE_KPIS

Rows = list[dict[str, Any]]
_COLORS = ("#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#4b5563")


def _layout(fig: go.Figure, title: str, *, height: int = 360, percent_y: bool = False) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.01},
        height=height,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
        template="plotly_white",
        legend={"orientation": "h", "y": -0.2},
        font={"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12},
    )
    if percent_y:
        fig.update_yaxes(tickformat=".0%")
    return fig


def bar(
    labels: Sequence[Any],
    values: Sequence[Any],
    title: str,
    *,
    color: str = _COLORS[0],
    horizontal: bool = False,
) -> go.Figure | None:
    if not labels:
        return None
    labels = [str(label) for label in labels]
    if horizontal:
        trace = go.Bar(x=list(values), y=labels, orientation="h", marker_color=color)
    else:
        trace = go.Bar(x=labels, y=list(values), marker_color=color)
    fig = go.Figure(trace)
    if horizontal:
        fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, height=max(260, 60 + 28 * len(labels)) if horizontal else 320)


def kpi_trends(rows: Rows) -> go.Figure | None:
    """The headline KPI rates by day, with each KPI's baseline dotted in the same colour."""
    if not rows:
        return None
    fig = go.Figure()
    dates = [row["date"] for row in rows]
    for kpi, color in zip(HEADLINE_KPIS, _COLORS, strict=False):
        if kpi.column not in rows[0]:
            continue
        values = [None if row[kpi.column] is None else float(row[kpi.column]) for row in rows]
        fig.add_trace(
            go.Scatter(
                x=dates, y=values, mode="lines", name=kpi.label, line={"color": color, "width": 2}
            )
        )
        fig.add_trace(
            go.Scatter(
                x=[dates[0], dates[-1]],
                y=[kpi.baseline, kpi.baseline],
                mode="lines",
                name=f"{kpi.label} baseline",
                line={"color": color, "dash": "dot", "width": 1},
                showlegend=False,  # the title says dotted lines are baselines
            )
        )
    return _layout(fig, "Headline KPIs by day (dotted: baseline)", height=400, percent_y=True)


def volume_trends(rows: Rows) -> go.Figure | None:
    if not rows:
        return None
    fig = go.Figure()
    dates = [row["date"] for row in rows]
    for column, color in (("signups", _COLORS[0]), ("active_users", _COLORS[1])):
        if column in rows[0]:
            fig.add_trace(
                go.Scatter(
                    x=dates,
                    y=[row[column] for row in rows],
                    mode="lines",
                    name=column.replace("_", " "),
                    line={"color": color},
                )
            )
    return _layout(fig, "Signups and active users by day", height=320)


def funnel(rows: Rows) -> go.Figure | None:
    if not rows:
        return None
    fig = go.Figure(
        go.Funnel(
            y=[f"{row['step_number']}. {row['step_name']}" for row in rows],
            x=[row["users_reached"] for row in rows],
            textinfo="value+percent initial+percent previous",
            marker={"color": _COLORS[0]},
        )
    )
    return _layout(fig, "Onboarding funnel (users reaching each step)", height=380)


def segment_sizes_over_time(rows: Rows) -> go.Figure | None:
    if not rows:
        return None
    fig = go.Figure()
    segments = sorted({row["segment"] for row in rows})
    for segment, color in zip(segments, _cycle(len(segments)), strict=True):
        points = [row for row in rows if row["segment"] == segment]
        fig.add_trace(
            go.Scatter(
                x=[p["day"] for p in points],
                y=[p["users"] for p in points],
                mode="lines",
                name=segment,
                line={"color": color},
                line_shape="hv",
            )
        )
    return _layout(
        fig, "Segment sizes over time (current members by qualification day)", height=380
    )


def stacked_status(rows: Rows, *, group: str, title: str) -> go.Figure | None:
    """Stacked bars: one bar per `group` value, one colour per status."""
    if not rows:
        return None
    groups = sorted({str(row[group]) for row in rows})
    statuses = sorted({str(row["status"]) for row in rows})
    fig = go.Figure()
    for status, color in zip(statuses, _cycle(len(statuses)), strict=True):
        counts = {str(row[group]): row["sends"] for row in rows if str(row["status"]) == status}
        fig.add_trace(
            go.Bar(x=groups, y=[counts.get(g, 0) for g in groups], name=status, marker_color=color)
        )
    fig.update_layout(barmode="stack")
    return _layout(fig, title, height=380)


def experiment_lifts(rows: Rows, fields: dict[str, str | None]) -> go.Figure | None:
    """Absolute lift per sequence with its confidence interval as error bars."""
    label, lift = fields.get("label"), fields.get("lift")
    if not rows or label is None or lift is None:
        return None
    low, high = fields.get("ci_low"), fields.get("ci_high")
    xs = [str(row[label]) for row in rows]
    ys = [_float(row[lift]) for row in rows]
    error: dict[str, Any] | None = None
    if low and high:
        error = {
            "type": "data",
            "symmetric": False,
            "array": [_gap(_float(row[high]), y) for row, y in zip(rows, ys, strict=True)],
            "arrayminus": [_gap(y, _float(row[low])) for row, y in zip(rows, ys, strict=True)],
        }
    fig = go.Figure(
        go.Scatter(
            x=xs,
            y=ys,
            mode="markers",
            error_y=error,
            marker={"size": 10, "color": _COLORS[0]},
            name="lift",
        )
    )
    fig.add_hline(y=0, line={"color": "#6b7280", "dash": "dash"})
    return _layout(fig, "Lift vs holdout with 95% interval", height=360, percent_y=True)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _gap(a: float | None, b: float | None) -> float:
    return 0.0 if a is None or b is None else max(a - b, 0.0)


def _cycle(n: int) -> Iterable[str]:
    return [_COLORS[i % len(_COLORS)] for i in range(n)]
