"""Human- and UI-facing summaries of an ingestion run."""

from __future__ import annotations

from pipelines.lib.ingest.load import IngestSummary


def summary_line(summary: IngestSummary) -> str:
    skipped = len(summary.files) - len(summary.ingested)
    return (
        f"files ingested: {len(summary.ingested)} (already ingested, skipped: {skipped}); "
        f"events loaded: {summary.total('rows_loaded')}, "
        f"rejected: {summary.total('rows_rejected')}, "
        f"duplicate: {summary.total('rows_duplicate')}"
    )


def rejections_markdown(summary: IngestSummary) -> str:
    """Rejection reasons with counts, as a markdown table (Dagster metadata)."""
    counts = summary.rejections
    if not counts:
        return "No records rejected."
    rows = "\n".join(f"| `{code}` | {count} |" for code, count in counts.most_common())
    return "| reason | records |\n|---|---|\n" + rows


def files_markdown(summary: IngestSummary) -> str:
    """Per-file counts, as a markdown table."""
    if not summary.files:
        return "No landing files."
    lines = ["| file | read | loaded | rejected | duplicate | note |", "|---|---|---|---|---|---|"]
    for report in summary.files:
        name = report.path.rsplit("/", 1)[-1]
        lines.append(
            f"| {name} | {report.rows_read} | {report.rows_loaded} | {report.rows_rejected}"
            f" | {report.rows_duplicate} | {report.skipped_reason or ''} |"
        )
    return "\n".join(lines)
