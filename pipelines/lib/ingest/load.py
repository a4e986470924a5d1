"""Load landing files into the raw tables, one transaction per file.

Per file: skip if its content (sha256) was ingested before; else validate every chunk in
SQL, keep rejects with their reason and raw text, insert new events (deduplicated by
event_id within the file and against everything loaded before), and record the counts.
rows_read = rows_loaded + rows_rejected + rows_duplicate holds for every file.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines.lib.ingest.files import LandingFile, discover_landing_files, file_sha256
from pipelines.lib.ingest.readers import BrokenFileError, Chunk, read_chunks
from pipelines.lib.ingest.validate import (
    MAX_KEPT_RAW_CHARS,
    checked_sql,
    columns_candidates_sql,
    columns_raw_records_sql,
    lines_candidates_sql,
)


@dataclass
class FileReport:
    path: str
    sha256: str
    file_format: str
    size_bytes: int
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_duplicate: int = 0
    rejections: Counter = field(default_factory=Counter)
    skipped_reason: str | None = None

    @property
    def balanced(self) -> bool:
        return self.rows_read == self.rows_loaded + self.rows_rejected + self.rows_duplicate


@dataclass
class IngestSummary:
    files: list[FileReport] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # files left for the next run

    @property
    def ingested(self) -> list[FileReport]:
        return [f for f in self.files if f.skipped_reason is None]

    def total(self, attribute: str) -> int:
        return sum(getattr(f, attribute) for f in self.ingested)

    @property
    def rejections(self) -> Counter:
        counts: Counter = Counter()
        for report in self.ingested:
            counts.update(report.rejections)
        return counts


def _already_ingested(con: duckdb.DuckDBPyConnection, sha256: str) -> str | None:
    row = con.execute(
        "select path from raw.ingested_files where sha256 = ? limit 1", [sha256]
    ).fetchone()
    return row[0] if row else None


def _insert_rejects(
    con, source: str, rows: list[tuple[int | None, str | None, str, str]], rejected_at: datetime
) -> None:
    """Rejections found outside SQL (file faults, unsplittable CSV rows)."""
    con.executemany(
        "insert into raw.events_rejected values (?, ?, ?, ?, ?, ?)",
        [
            (source, line, raw[:MAX_KEPT_RAW_CHARS] if raw else raw, code, message, rejected_at)
            for line, raw, code, message in rows
        ],
    )


def _insert_checked_rejects(
    con, batch: Chunk, checked_rows: pa.Table, source: str, now: datetime
) -> None:
    """Rejected rows of `checked_rows`, each with its record as received."""
    # Bytes that are not UTF-8 cannot be SQL text: keep them escaped, byte for byte.
    bad_bytes = con.execute(
        "select line_number, raw_bytes from checked_rows where error_code = 'not_utf8'"
    ).fetchall()
    escaped = [
        bytes(raw or b"").rstrip(b"\r\n").decode("utf-8", errors="backslashreplace")
        for _, raw in bad_bytes
    ]
    utf8_fixes = pa.table(  # noqa: F841 - read by name, like the two tables above
        {
            "line_number": pa.array([line for line, _ in bad_bytes], pa.int64()),
            "raw_text": pa.array(escaped, pa.string()),
        }
    )
    landing_chunk = batch.table  # noqa: F841 - read by `columns_raw_records_sql`
    if batch.kind == "columns":  # JSON Lines keep their raw text in `checked_rows` already
        rebuilt = columns_raw_records_sql(batch.table.schema)
    else:
        rebuilt = "select null::bigint as line_number, null::varchar as raw_text where false"
    con.execute(
        f"""
        insert into raw.events_rejected
        select $source, c.line_number,
               left(coalesce(f.raw_text, c.raw_record, r.raw_text), {MAX_KEPT_RAW_CHARS}),
               c.error_code, c.error_message, $now
        from checked_rows c
        left join utf8_fixes f using (line_number)
        left join ({rebuilt}) r using (line_number)
        where c.error_code is not null
        """,
        {"source": source, "now": now},
    )


def _load_chunk(
    con, batch: Chunk, report: FileReport, source: str, now: datetime, reference_time: datetime
) -> None:
    # The file is one transaction, so nothing per chunk may be a catalog object: a temp table
    # replaced or a view unregistered inside it is kept (with its Arrow data) until commit,
    # and memory would grow with every chunk. The chunk and its validation result are Arrow
    # tables that the SQL reads by variable name (DuckDB's replacement scan) instead; the
    # names are distinctive because a warehouse table of the same name would win.
    landing_chunk = batch.table  # noqa: F841 - read by the validation SQL
    candidates = (
        lines_candidates_sql()
        if batch.kind == "lines"
        else columns_candidates_sql(batch.table.schema)
    )
    checked_rows = con.sql(
        checked_sql(candidates), params={"reference_time": reference_time}
    ).to_arrow_table()
    read = checked_rows.num_rows
    rejected = read - checked_rows["error_code"].null_count
    if rejected:
        _insert_checked_rejects(con, batch, checked_rows, source, now)
    loaded = con.execute(
        """
        insert into raw.events
        select event_id, event_type, event_name, user_id, anonymous_id, occurred_at,
               coalesce(received_at, $now), properties, traits, context, $source, $now
        from checked_rows c
        where error_code is null
          and not exists (select 1 from raw.events e where e.event_id = c.event_id)
        qualify row_number() over (partition by event_id order by line_number) = 1
        """,
        {"source": source, "now": now},
    ).fetchone()[0]
    if rejected:
        for code, count in con.execute(
            "select error_code, count(*) from checked_rows where error_code is not null group by 1"
        ).fetchall():
            report.rejections[code] += count
    report.rows_read += read
    report.rows_rejected += rejected
    report.rows_loaded += loaded
    report.rows_duplicate += read - rejected - loaded
    if batch.unparsed:
        _insert_rejects(
            con,
            source,
            [
                (
                    line if line > 0 else None,
                    text,
                    "malformed_csv_row",
                    "CSV row has the wrong number of fields",
                )
                for line, text in batch.unparsed
            ],
            now,
        )
        report.rows_read += len(batch.unparsed)
        report.rows_rejected += len(batch.unparsed)
        report.rejections["malformed_csv_row"] += len(batch.unparsed)


def ingest_file(
    con: duckdb.DuckDBPyConnection,
    landing: LandingFile,
    *,
    reference_time: datetime,
    sha256: str | None = None,
) -> FileReport:
    """Ingest one file in one transaction; a broken file is recorded, never raised."""
    sha256 = sha256 or file_sha256(landing.path)
    source = str(landing.path)
    report = FileReport(source, sha256, landing.file_format, landing.size_bytes)
    previous = _already_ingested(con, sha256)
    if previous is not None:
        report.skipped_reason = f"same content already ingested from {previous}"
        return report
    now = datetime.now(UTC)
    # The chunk SQL reads Arrow tables by variable name (see _load_chunk); let DuckDB find
    # them even when the connection is wrapped (the benchmark times every statement).
    con.execute("set python_scan_all_frames = true")
    con.execute("begin")
    try:
        try:
            for chunk in read_chunks(landing.path, landing.file_format):
                _load_chunk(con, chunk, report, source, now, reference_time)
        except BrokenFileError as fault:
            # The readable part is kept; the fault itself counts as one rejected record.
            _insert_rejects(con, source, [(None, fault.raw_record, fault.code, fault.message)], now)
            report.rows_read += 1
            report.rows_rejected += 1
            report.rejections[fault.code] += 1
        if not report.balanced:  # a bug, not bad data: never commit counts that do not add up
            raise RuntimeError(f"{source}: counts do not add up: {report}")
        con.execute(
            "insert into raw.ingested_files values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                source,
                sha256,
                landing.file_format,
                landing.size_bytes,
                report.rows_read,
                report.rows_loaded,
                report.rows_rejected,
                report.rows_duplicate,
                now,
            ],
        )
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return report


def ingest_files(
    con: duckdb.DuckDBPyConnection,
    files: list[LandingFile],
    *,
    reference_time: datetime | None = None,
) -> IngestSummary:
    """Ingest each file; an unexpected error in one file leaves it for the next run and
    does not stop the others (the caller fails the run after reporting them)."""
    reference = max(reference_time or datetime.now(UTC), datetime.now(UTC))
    summary = IngestSummary()
    for landing in files:
        try:
            summary.files.append(ingest_file(con, landing, reference_time=reference))
        except Exception as exc:
            summary.errors.append(f"{landing.path}: {type(exc).__name__}: {exc}")
    return summary


__all__ = ["FileReport", "IngestSummary", "ingest_file", "ingest_files"]


def ingest_landing_folder(
    con: duckdb.DuckDBPyConnection,
    folder: Path,
    *,
    only_paths: list[str] | None = None,
    reference_time: datetime | None = None,
) -> IngestSummary:
    """Ingest every landing file in `folder` (or just `only_paths`) not ingested before."""
    files = discover_landing_files(folder)
    if only_paths:
        wanted = {str(Path(p).resolve()) for p in only_paths}
        files = [f for f in files if str(f.path.resolve()) in wanted]
    return ingest_files(con, files, reference_time=reference_time)
