"""Ingest: new landing files → raw.events, raw.events_rejected, raw.ingested_files."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.lib.ingest import IngestSummary, ingest_landing_folder
from pipelines.lib.ingest.report import summary_line
from pipelines.lib.steps.context import Opener, RunContext


@dataclass(frozen=True)
class IngestResult:
    summary: IngestSummary
    total_events: int  # rows in raw.events after the load

    @property
    def failed(self) -> bool:
        # Files that met a fault are left for the next run; the others are committed.
        return bool(self.summary.errors)

    def summary_line(self) -> str:
        return summary_line(self.summary)

    def lines(self) -> list[str]:
        lines = [f"ingest: {self.summary_line()}"]
        lines += [f"ingest: FAILED {error}" for error in self.summary.errors]
        lines += [
            f"ingest:   rejected {count:>6} {code}"
            for code, count in self.summary.rejections.most_common()
        ]
        return lines


def ingest_step(
    run: RunContext, connect: Opener, *, only_paths: list[str] | None = None
) -> IngestResult:
    """Load every new landing file (or only `only_paths`), judged against the run's clock."""
    with connect() as con:
        summary = ingest_landing_folder(
            con, run.settings.landing_events_dir, only_paths=only_paths, reference_time=run.as_of
        )
        total = con.execute("select count(*) from raw.events").fetchone()[0]
    return IngestResult(summary, total)
