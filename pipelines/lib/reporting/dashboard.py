"""Build the dashboard: one self-contained HTML file with plotly.js embedded once.

The page references nothing outside itself (no CDN, no web fonts, no images), so it opens
from disk with no network. A tiny script at the top records JavaScript errors on
`<html data-js-errors>` so a headless browser test can see them in the dumped DOM.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from pipelines.lib.atomic_files import atomic_write_text
from pipelines.lib.flags import FlagError, load_flags
from pipelines.lib.kpis import HEADLINE_KPIS, latest_kpis
from pipelines.lib.reporting import charts, queries
from pipelines.lib.settings import ENVIRONMENTS, FLAGS_FILE
from pipelines.lib.simulation.record import simulation_run

SECTIONS = (
    "Headline KPIs",
    "KPI trends",
    "Onboarding funnel",
    "Segment sizes",
    "Sequence performance",
    "Experiments",
    "Flags and rollout",
    "Send health",
    "Data health",
)
NO_EXPERIMENTS = "No experiment data yet"
SAMPLE_DATA_NOTE = "Sample data: this dev environment runs on generated (simulated) users."
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["toImage"]}

# Each figure is drawn by an inline script as soon as its div is parsed, before the next
# grid item exists, so it takes the whole row; resize every chart once the layout is final.
_RESIZE_AFTER_LOAD = """<script>
window.addEventListener("load", function () {
  document.querySelectorAll(".plotly-graph-div").forEach(function (div) {
    Plotly.Plots.resize(div);
  });
});
</script>"""

_ERROR_HOOK = """
(function () {
  var errors = [];
  function record(message) {
    errors.push(String(message));
    document.documentElement.setAttribute('data-js-errors', String(errors.length));
  }
  window.addEventListener('error', function (e) { record(e.message); });
  window.addEventListener('unhandledrejection', function (e) { record(e.reason); });
  var original = console.error;
  console.error = function () { record([].slice.call(arguments).join(' '));
    return original.apply(console, arguments); };
})();
"""

_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 0;
       background: #f8fafc; color: #0f172a; }
header { background: #0f172a; color: #f8fafc; padding: 16px 32px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header p { margin: 0; color: #cbd5e1; font-size: 13px; }
nav { padding: 8px 32px; background: #e2e8f0; font-size: 13px; }
nav a { margin-right: 14px; color: #1e3a8a; text-decoration: none; }
main { padding: 8px 32px 32px; }
section { background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; padding: 12px 20px;
          margin: 16px 0; }
h2 { font-size: 18px; margin: 4px 0 10px; }
.cards { display: flex; gap: 16px; flex-wrap: wrap; }
.card { border: 1px solid #e2e8f0; border-radius: 8px; padding: 12px 16px; min-width: 220px; }
.card .label { font-size: 13px; color: #475569; }
.card .value { font-size: 28px; font-weight: 600; }
.card .meta { font-size: 12px; color: #475569; }
.good { color: #15803d; } .bad { color: #b91c1c; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border-bottom: 1px solid #e2e8f0; padding: 4px 10px; text-align: left; }
th { background: #f1f5f9; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.current td { background: #eff6ff; font-weight: 600; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 12px; }
/* Grid items default to min-width: auto, so a plot's own width would widen its column and
   spill under the next chart; pin them to the column and let plotly fit inside. */
.grid > * { min-width: 0; overflow: hidden; }
.note { font-size: 12px; color: #475569; }
.empty { color: #64748b; font-style: italic; }
.warn { color: #b91c1c; font-weight: 600; }
.simulation { background: #fef3c7; border: 2px solid #d97706; color: #78350f; padding: 8px 12px;
  font-weight: 700; border-radius: 6px; }
footer { padding: 12px 32px; font-size: 12px; color: #475569; }
"""


@dataclass(frozen=True)
class DashboardResult:
    path: Path
    kpis: dict[str, float | None]
    sections: list[str]
    experiments: list[dict[str, Any]] | None = None
    kpi_date: str | None = None
    charts: int = field(default=0)


class _Page:
    """Collects figure HTML; only the page head carries plotly.js."""

    def __init__(self) -> None:
        self.figures = 0

    def figure(self, fig: go.Figure | None, empty: str = "No data yet.") -> str:
        if fig is None:
            return f'<p class="empty">{html.escape(empty)}</p>'
        self.figures += 1
        return fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            config=PLOTLY_CONFIG,
            div_id=f"chart-{self.figures}",
        )


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC") if value.tzinfo else value.isoformat(" ")
    return str(value)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def table(
    rows: list[dict[str, Any]],
    columns: list[str] | None = None,
    *,
    highlight: tuple[str, Any] | None = None,
) -> str:
    if not rows:
        return '<p class="empty">No data yet.</p>'
    columns = columns or list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cls = ' class="current"' if highlight and row.get(highlight[0]) == highlight[1] else ""
        cells = "".join(
            f'<td class="num">{html.escape(_fmt(row.get(c)))}</td>'
            if isinstance(row.get(c), int | float) and not isinstance(row.get(c), bool)
            else f"<td>{html.escape(_fmt(row.get(c)))}</td>"
            for c in columns
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _section(title: str, body: str) -> str:
    anchor = title.lower().replace(" ", "-")
    return f'<section id="{anchor}"><h2>{html.escape(title)}</h2>{body}</section>'


def _kpi_cards(values: dict[str, float | None], date: str | None) -> str:
    cards = []
    for kpi in HEADLINE_KPIS:
        value = values.get(kpi.column)
        target = f"target {_pct(kpi.target)}" if kpi.target is not None else "target: lower"
        delta = ""
        if value is not None:
            diff = value - kpi.baseline
            better = diff < 0 if kpi.lower_is_better else diff > 0
            delta = (
                f'<span class="{"good" if better else "bad"}">'
                f"{diff * 100:+.1f} pts vs baseline</span>"
            )
        cards.append(
            f'<div class="card"><div class="label">{html.escape(kpi.label)}</div>'
            f'<div class="value">{_pct(value)}</div>'
            f'<div class="meta">baseline {_pct(kpi.baseline)} · {target}</div>'
            f'<div class="meta">{delta}</div></div>'
        )
    when = f"as of {html.escape(date)}" if date else "no KPI rows yet: run the pipeline"
    return (
        f'<p class="note">Latest marts.kpi_daily row, {when}.</p>'
        f'<div class="cards">{"".join(cards)}</div>'
    )


_FIELD_CANDIDATES = {
    "label": ("sequence_id", "sequence", "sequence_key"),
    "lift": ("absolute_lift", "lift_abs", "abs_lift", "lift", "diff", "difference"),
    "ci_low": (
        "ci_low",
        "ci_lower",
        "lift_ci_low",
        "lift_ci_lower",
        "diff_ci_low",
        "ci_95_low",
        "ci_lo",
    ),
    "ci_high": (
        "ci_high",
        "ci_upper",
        "lift_ci_high",
        "lift_ci_upper",
        "diff_ci_high",
        "ci_95_high",
        "ci_hi",
    ),
    "srm": ("srm_flag", "srm_mismatch", "is_srm", "srm", "srm_warning", "srm_flagged"),
}


def experiment_fields(columns: list[str]) -> dict[str, str | None]:
    """Which of the experiment mart's columns hold the label, lift, interval and SRM flag."""
    lower = {c.lower(): c for c in columns}
    return {
        key: next((lower[name] for name in names if name in lower), None)
        for key, names in _FIELD_CANDIDATES.items()
    }


def _experiments_section(page: _Page, rows: list[dict[str, Any]] | None) -> str:
    if rows is None:
        return (
            f'<p class="empty">{NO_EXPERIMENTS}: the fct_sequence_experiments mart does not '
            "exist in this warehouse yet.</p>"
        )
    if not rows:
        return f'<p class="empty">{NO_EXPERIMENTS}: fct_sequence_experiments has no rows.</p>'
    fields = experiment_fields(list(rows[0]))
    parts = []
    srm = fields["srm"]
    if srm is not None:
        flagged = [str(row.get(fields["label"] or srm)) for row in rows if row.get(srm)]
        if flagged:
            parts.append(
                f'<p class="warn">Sample ratio mismatch (p &lt; 0.001) in: '
                f"{html.escape(', '.join(flagged))}. Do not trust these lifts.</p>"
            )
        else:
            parts.append('<p class="note">No sample ratio mismatch flagged.</p>')
    parts.append(
        page.figure(
            charts.experiment_lifts(rows, fields), "Lift columns not recognised; see the table."
        )
    )
    parts.append(table(rows))
    return "".join(parts)


def _flags_section(env: str) -> str:
    try:
        flags = load_flags(FLAGS_FILE)
    except (FlagError, OSError) as exc:
        return f'<p class="warn">flags.yaml could not be read: {html.escape(str(exc))}</p>'
    rows = [
        {"flag": key, **{e: flag.environments[e].describe() for e in ENVIRONMENTS}}
        for key, flag in flags.flags.items()
    ]
    head = "".join(
        f"<th>{html.escape(e)}{' (this environment)' if e == env else ''}</th>"
        for e in ENVIRONMENTS
    )
    body = []
    for row in rows:
        cells = []
        for e in ENVIRONMENTS:
            text = html.escape(row[e])
            cells.append(
                f'<td class="current"><b>{text}</b></td>' if e == env else f"<td>{text}</td>"
            )
        body.append(f"<tr><td>{html.escape(row['flag'])}</td>{''.join(cells)}</tr>")
    return (
        f'<p class="note">From flags/flags.yaml (the next plan uses these).</p>'
        f"<table><thead><tr><th>flag</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


def build_dashboard(
    con: duckdb.DuckDBPyConnection, *, env: str, out_path: Path, as_of: datetime
) -> DashboardResult:
    """Render every section from `con` (read-only use) and write `out_path` atomically."""
    page = _Page()
    latest = latest_kpis(con) if queries.table_exists(con, "marts", "kpi_daily") else None
    kpi_date, kpi_values = latest if latest else (None, {k.column: None for k in HEADLINE_KPIS})

    kpi_rows = queries.kpi_daily(con)
    funnel_rows = queries.onboarding_funnel(con)
    segment_now = queries.segment_counts(con)
    seq_status = queries.sequence_status_counts(con)
    send_status = queries.send_status_counts(con)
    failures = queries.failures_by_reason(con)
    suppressions = queries.suppressions_by_reason(con)
    rejected = queries.rejected_by_reason(con)
    ingestion = queries.ingestion_summary(con)
    experiment_rows = queries.experiments(con)
    performance = queries.message_performance(con)

    bodies: dict[str, str] = {}
    bodies["Headline KPIs"] = _kpi_cards(kpi_values, kpi_date)
    bodies["KPI trends"] = (
        '<div class="grid">'
        + page.figure(charts.kpi_trends(kpi_rows))
        + page.figure(charts.volume_trends(kpi_rows))
        + "</div>"
    )
    bodies["Onboarding funnel"] = (
        page.figure(charts.funnel(funnel_rows)) + table(funnel_rows)
        if funnel_rows
        else page.figure(None)
    )
    bodies["Segment sizes"] = (
        '<div class="grid">'
        + page.figure(
            charts.bar(
                [r["segment"] for r in segment_now],
                [r["users"] for r in segment_now],
                "Users per segment now",
                horizontal=True,
            )
        )
        + page.figure(charts.segment_sizes_over_time(queries.segment_sizes_by_day(con)))
        + '</div><p class="note">Over time counts today\'s members by the day they qualified;'
        " users who have since left a segment are not shown on earlier days.</p>"
    )
    perf_html = ""
    if performance is not None:
        perf_html = "<h3>Message performance (fct_message_performance)</h3>" + table(
            performance[:200]
        )
    bodies["Sequence performance"] = (
        page.figure(
            charts.stacked_status(
                seq_status, group="sequence_id", title="Ledger status per sequence"
            )
        )
        + table(queries.sequence_summary(con))
        + perf_html
    )
    bodies["Experiments"] = _experiments_section(page, experiment_rows)
    bodies["Flags and rollout"] = _flags_section(env)
    bodies["Send health"] = (
        '<div class="grid">'
        + page.figure(
            charts.bar(
                [r["status"] for r in send_status],
                [r["sends"] for r in send_status],
                "Sends by status",
            )
        )
        + page.figure(
            charts.bar(
                [r["reason"] for r in failures],
                [r["sends"] for r in failures],
                "Failures by reason",
                color="#dc2626",
                horizontal=True,
            ),
            "No failed sends.",
        )
        + page.figure(
            charts.bar(
                [r["reason"] for r in suppressions],
                [r["suppressions"] for r in suppressions],
                "Suppressions by reason",
                color="#ea580c",
            ),
            "No suppressions.",
        )
        + "</div>"
    )
    age = queries.hours_since(ingestion["last_ingested_at"], as_of)
    freshness = (
        "never"
        if age is None
        else f"{_fmt(ingestion['last_ingested_at'])} ({age:.1f} h before as_of)"
    )
    bodies["Data health"] = (
        f"<p>Last ingestion: <b>{html.escape(freshness)}</b> · files {ingestion['files']} · "
        f"rows loaded {ingestion['rows_loaded']} · rejected {ingestion['rows_rejected']} · "
        f"duplicates {ingestion['rows_duplicate']}</p>"
        + page.figure(
            charts.bar(
                [r["error_code"] for r in rejected],
                [r["rejected"] for r in rejected],
                "Rejected events by reason",
                color="#dc2626",
                horizontal=True,
            ),
            "No rejected events.",
        )
    )

    nav = "".join(
        f'<a href="#{t.lower().replace(" ", "-")}">{html.escape(t)}</a>' for t in SECTIONS
    )
    sections_html = "".join(_section(title, bodies[title]) for title in SECTIONS)
    footer = f"<p><b>{SAMPLE_DATA_NOTE}</b></p>" if env == "dev" else ""
    simulation = simulation_run(con)
    banner = _simulation_banner(simulation) if simulation else ""
    title_prefix = "SIMULATION · " if simulation else ""
    as_of_text = _fmt(as_of)
    document = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title_prefix}Lifecycle messaging dashboard · {html.escape(env)}</title>"
        f"<script>{_ERROR_HOOK}</script>"
        f'<script type="text/javascript">{get_plotlyjs()}</script>'
        f"<style>{_CSS}</style></head><body>"
        f"<header><h1>Lifecycle messaging dashboard</h1><p>environment <b>{html.escape(env)}</b>"
        f" · as_of {html.escape(as_of_text)} · self-contained, works offline</p>{banner}</header>"
        f"<nav>{nav}</nav><main>{sections_html}</main>"
        f"<footer>{footer}<p>Generated by pipelines.lib.reporting at as_of "
        f"{html.escape(as_of_text)}.</p></footer>{_RESIZE_AFTER_LOAD}</body></html>\n"
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(out_path, document)
    return DashboardResult(
        path=out_path,
        kpis=dict(kpi_values),
        sections=list(SECTIONS),
        experiments=experiment_rows,
        kpi_date=kpi_date,
        charts=page.figures,
    )


def _simulation_banner(run: dict[str, Any]) -> str:
    """Shown on every simulated warehouse's dashboard, so no one takes it for real users."""
    return (
        '<p class="simulation" role="alert">SIMULATION: synthetic users from <code>bis simulate'
        f"</code> (run {html.escape(str(run['run_id']))}, sequence "
        f"{html.escape(str(run['sequence_id']))}, true lift {run['true_lift']:+.1%} over a base"
        f" conversion of {run['base_rate']:.1%}, seed {run['seed']}). Not real results.</p>"
    )


def _atomic_write(path: Path, text: str) -> None:
    atomic_write_text(path, text)
    os.chmod(path, 0o644)
