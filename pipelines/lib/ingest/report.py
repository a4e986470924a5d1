"""Human- and UI-facing summaries of an ingestion run."""

from __future__ import annotations

from collections import Counter

from pipelines.lib.ingest.load import IngestSummary

_NOT_READ = {
    "symlink": "symbolic link",
    "not_regular_file": "not a regular file",
    "unlistable_folder": "folder not listable",
    "unreadable": "cannot be opened",
    "vanished": "vanished",
}


def summary_line(summary: IngestSummary) -> str:
    skipped = [f for f in summary.files if f.skipped_reason is not None]
    already = sum(1 for f in skipped if f.skipped_code in (None, "already_ingested"))
    not_read = Counter(f.skipped_code for f in skipped if f.skipped_code in _NOT_READ)
    detail = ", ".join(f"{_NOT_READ[code]}: {n}" for code, n in sorted(not_read.items()))
    return (
        f"files ingested: {len(summary.ingested)} (already ingested, skipped: {already}); "
        + (f"not read: {sum(not_read.values())} ({detail}); " if not_read else "")
        + f"events loaded: {summary.total('rows_loaded')}, "
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
