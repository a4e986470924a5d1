"""Load landing files into the raw tables, one transaction per file.

Per file: skip if its content (sha256) was ingested before; else validate every chunk in
SQL, keep rejects with their reason and raw text, insert new events (deduplicated by
event_id within the file and against everything loaded before), and record the counts.
rows_read = rows_loaded + rows_rejected + rows_duplicate holds for every file.

Validation always runs in DuckDB: on the embedded warehouse in the warehouse itself; on a
PostgreSQL warehouse in an in-memory DuckDB beside it, whose results go to the server with
COPY (docs/architecture.md §16). The rejection codes and counts are the same on both.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import duckdb
import pyarrow as pa

from pipelines.lib.clock import as_of as pipeline_clock
from pipelines.lib.clock import wall_clock
from pipelines.lib.faults import machine_fault
from pipelines.lib.ingest.files import (
    LandingFile,
    NotRegularFileError,
    SkippedPath,
    detect_format,
    handle_sha256,
    open_landing_file,
    scan_landing_folder,
)
from pipelines.lib.ingest.readers import BrokenFileError, Chunk, Reject, read_chunks
from pipelines.lib.ingest.validate import (
    MAX_KEPT_RAW_CHARS,
    checked_sql,
    columns_candidates_sql,
    columns_raw_records_sql,
    lines_candidates_sql,
)
from pipelines.lib.warehouse import Connection, is_postgres, memory_limit, serialize


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
    # already_ingested | symlink | not_regular_file | unlistable_folder | unreadable | vanished
    skipped_code: str | None = None

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


@dataclass
class Loading:
    """Where a load validates (`stage`, always DuckDB) and where it writes (`target`)."""

    stage: duckdb.DuckDBPyConnection
    target: Connection

    @property
    def staged(self) -> bool:
        return self.stage is not self.target

    @classmethod
    def into(cls, con: Connection) -> Loading:
        if not is_postgres(con):
            return cls(stage=con, target=con)
        stage = duckdb.connect(config={"memory_limit": memory_limit()})
        stage.execute("set timezone = 'UTC'")
        return cls(stage=stage, target=con)

    def close(self) -> None:
        if self.staged:
            self.stage.close()


def _already_ingested(con: Connection, sha256: str) -> str | None:
    """Why a file with this content is not read again, or None when it is new."""
    row = con.execute(
        "select path, ingested_at from raw.ingested_files where sha256 = ?"
        " order by ingested_at limit 1",
        [sha256],
    ).fetchone()
    if row is None:
        return None
    path, ingested_at = row
    # A file-level fault is the rejection without a line number made in the same load.
    fault = con.execute(
        """
        select error_code, error_message from raw.events_rejected
        where source_file = ? and rejected_at = ? and line_number is null
        order by error_code limit 1
        """,
        [path, ingested_at],
    ).fetchone()
    if fault is None:
        return f"same content already ingested from {path}"
    code, message = fault
    return (
        f"same content already ingested from {path}, where it stopped at a file-level fault"
        f" ({code}: {message}); it is read again only once its content changes"
    )


REJECTED_COLUMNS = (
    "source_file",
    "line_number",
    "raw_record",
    "error_code",
    "error_message",
    "rejected_at",
)
EVENT_COLUMNS = (
    "event_id", "event_type", "event_name", "user_id", "anonymous_id", "occurred_at",
    "received_at", "properties", "traits", "context", "source_file", "ingested_at",
)  # fmt: skip


def _insert_rejects(
    con: Connection, source: str, rows: list[Reject], rejected_at: datetime
) -> None:
    """Rejections found outside SQL (file faults, reader-rejected records)."""
    con.executemany(
        "insert into raw.events_rejected values (?, ?, ?, ?, ?, ?)",
        [
            (
                source,
                row.line_number,
                row.raw_record[:MAX_KEPT_RAW_CHARS] if row.raw_record else row.raw_record,
                row.code,
                row.message,
                rejected_at,
            )
            for row in rows
        ],
    )


def _insert_checked_rejects(
    load: Loading, batch: Chunk, checked_rows: pa.Table, source: str, now: datetime
) -> None:
    """Rejected rows of `checked_rows`, each with its record as received."""
    con = load.stage
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
    rejected_sql = f"""
        select $source, c.line_number,
               left(coalesce(f.raw_text, c.raw_record, r.raw_text), {MAX_KEPT_RAW_CHARS}),
               c.error_code, c.error_message, $now
        from checked_rows c
        left join utf8_fixes f using (line_number)
        left join ({rebuilt}) r using (line_number)
        where c.error_code is not null
        """
    params = {"source": source, "now": now}
    if not load.staged:
        con.execute(f"insert into raw.events_rejected {rejected_sql}", params)
        return
    rows = con.execute(rejected_sql, params).fetchall()
    load.target.copy_rows("raw.events_rejected", REJECTED_COLUMNS, rows)


def _load_chunk(
    load: Loading,
    batch: Chunk,
    report: FileReport,
    source: str,
    now: datetime,
    reference_time: datetime,
) -> None:
    if batch.rejects:
        _insert_rejects(load.target, source, batch.rejects, now)
        report.rows_read += len(batch.rejects)
        report.rows_rejected += len(batch.rejects)
        report.rejections.update(reject.code for reject in batch.rejects)
    if batch.table.num_rows == 0:
        return
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
    checked_rows = load.stage.sql(
        checked_sql(candidates), params={"reference_time": reference_time}
    ).to_arrow_table()
    read = checked_rows.num_rows
    rejected = read - checked_rows["error_code"].null_count
    if rejected:
        _insert_checked_rejects(load, batch, checked_rows, source, now)
    params = {"source": source, "now": now}
    if load.staged:
        loaded = _copy_new_events(load, checked_rows, params)
    else:
        also_new = "and not exists (select 1 from raw.events e where e.event_id = c.event_id)"
        loaded = load.target.execute(
            f"insert into raw.events {new_events_sql(also_new)}", params
        ).fetchone()[0]
    if rejected:
        for code, count in load.stage.execute(
            "select error_code, count(*) from checked_rows where error_code is not null group by 1"
        ).fetchall():
            report.rejections[code] += count
    report.rows_read += read
    report.rows_rejected += rejected
    report.rows_loaded += loaded
    report.rows_duplicate += read - rejected - loaded


def new_events_sql(also: str = "") -> str:
    """The valid rows of a checked chunk, first occurrence of each event_id (in file order),
    that also meet the condition `also`."""
    return f"""
    select event_id, event_type, event_name, user_id, anonymous_id, occurred_at,
           coalesce(received_at, $now), properties, traits, context, $source, $now
    from checked_rows c
    where error_code is null {also}
    qualify row_number() over (partition by event_id order by line_number) = 1
    """


def _copy_new_events(load: Loading, checked_rows: pa.Table, params: dict) -> int:
    """PostgreSQL: the chunk's new events, written by DuckDB as CSV and sent with COPY into
    a temporary table, then inserted unless raw.events already holds their event_id."""
    target = load.target
    target.execute(
        "create temp table if not exists ingest_incoming"
        " (like raw.events including defaults) on commit delete rows"
    )
    with tempfile.TemporaryDirectory(prefix="bis-ingest-") as folder:
        csv_path = f"{folder}/chunk.csv"
        load.stage.execute(
            f"copy ({new_events_sql()}) to '{csv_path}' (format csv, header false)", params
        )
        target.execute("truncate ingest_incoming")
        target.copy_file("ingest_incoming", EVENT_COLUMNS, csv_path)
    return target.execute(
        """
        insert into raw.events
        select i.* from ingest_incoming i
        where not exists (select 1 from raw.events e where e.event_id = i.event_id)
        """
    ).rowcount


def _skipped(landing: LandingFile, code: str, reason: str) -> FileReport:
    report = FileReport(str(landing.path), "", landing.file_format, landing.size_bytes)
    report.skipped_code = code
    report.skipped_reason = reason
    return report


def ingest_file(
    con: Connection | Loading,
    landing: LandingFile,
    *,
    reference_time: datetime,
    sha256: str | None = None,
) -> FileReport:
    """Ingest one file in one transaction; a broken file is recorded, never raised.

    The file is opened once, without following a link or blocking on a FIFO, and hashed
    and read through that one descriptor, so what is recorded is what was read.
    """
    try:
        handle = open_landing_file(landing.path)
    except NotRegularFileError as exc:
        return _skipped(landing, exc.code, exc.reason)
    except FileNotFoundError:
        return _skipped(landing, "vanished", "file disappeared before it could be read")
    except PermissionError as exc:
        # One file the pipeline may not read must not stop the others: reported, and tried
        # again next run (it has no content to record until it can be read).
        reason = f"cannot be opened ({exc.strerror}): not read; fix its permissions"
        return _skipped(landing, "unreadable", reason)
    load = con if isinstance(con, Loading) else Loading.into(con)
    try:
        with handle:
            return _ingest_open_file(
                load, landing, handle, reference_time=reference_time, sha256=sha256
            )
    finally:
        if load is not con:
            load.close()


def _ingest_open_file(
    load: Loading,
    landing: LandingFile,
    handle: BinaryIO,
    *,
    reference_time: datetime,
    sha256: str | None,
) -> FileReport:
    sha256 = sha256 or handle_sha256(handle)
    source = str(landing.path)
    report = FileReport(source, sha256, landing.file_format, landing.size_bytes)
    previous = _already_ingested(load.target, sha256)
    if previous is not None:
        report.skipped_code = "already_ingested"
        report.skipped_reason = previous
        return report
    now = wall_clock()
    chunks = read_chunks(handle, landing.file_format, landing.path.name)
    try:
        _commit_file(load, landing, report, chunks, now, reference_time)
    except duckdb.NotImplementedException as exc:
        # A column of a type the warehouse cannot scan: every record of the file has it, so
        # the file is one fault, recorded like any other (and not retried until it changes).
        report = FileReport(source, sha256, landing.file_format, landing.size_bytes)
        fault = BrokenFileError(
            "unreadable_file",
            f"{landing.path.name} has a column of a type the warehouse cannot read ({exc})",
        )
        _commit_file(load, landing, report, _raising(fault), now, reference_time)
    return report


def _raising(fault: BrokenFileError) -> Iterator[Chunk]:
    raise fault
    yield  # a generator that fails at once


def _commit_file(
    load: Loading,
    landing: LandingFile,
    report: FileReport,
    chunks: Iterator[Chunk],
    now: datetime,
    reference_time: datetime,
) -> None:
    """Load the chunks and record the file, in one transaction."""
    source = report.path
    # The chunk SQL reads Arrow tables by variable name (see _load_chunk); let DuckDB find
    # them even when the connection is wrapped (the benchmark times every statement).
    load.stage.execute("set python_scan_all_frames = true")
    con = load.target
    con.execute("begin")
    try:
        serialize(con, "ingest")
        try:
            for chunk in chunks:
                _load_chunk(load, chunk, report, source, now, reference_time)
        except BrokenFileError as fault:
            # The readable part is kept; the fault itself counts as one rejected record.
            reject = Reject(None, fault.raw_record, fault.code, fault.message)
            _insert_rejects(con, source, [reject], now)
            report.rows_read += 1
            report.rows_rejected += 1
            report.rejections[fault.code] += 1
        if not report.balanced:  # a bug, not bad data: never commit counts that do not add up
            raise RuntimeError(f"{source}: counts do not add up: {report}")
        con.execute(
            "insert into raw.ingested_files values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                source,
                report.sha256,
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


def ingest_files(
    con: Connection,
    files: list[LandingFile],
    *,
    reference_time: datetime | None = None,
) -> IngestSummary:
    """Ingest each file; an unexpected error in one file leaves it for the next run and
    does not stop the others (the caller fails the run after reporting them)."""
    # Timestamps are judged against the pipeline clock alone: a wall-clock term here made the
    # same file load differently depending on the day it was ingested.
    reference = reference_time or pipeline_clock()
    summary = IngestSummary()
    load = Loading.into(con)
    try:
        for landing in files:
            try:
                summary.files.append(ingest_file(load, landing, reference_time=reference))
            except Exception as exc:
                if machine_fault(exc) is not None:
                    raise  # disk full or read-only: every later file would meet it too
                summary.errors.append(f"{landing.path}: {type(exc).__name__}: {exc}")
    finally:
        load.close()
    return summary


__all__ = ["FileReport", "IngestSummary", "ingest_file", "ingest_files"]


def _skipped_path(item: SkippedPath) -> FileReport:
    report = FileReport(str(item.path), "", detect_format(item.path) or "", 0)
    report.skipped_code = item.code
    report.skipped_reason = item.reason
    return report


def ingest_landing_folder(
    con: Connection,
    folder: Path,
    *,
    only_paths: list[str] | None = None,
    reference_time: datetime | None = None,
) -> IngestSummary:
    """Ingest every landing file in `folder` (or just `only_paths`) not ingested before;
    links and special files in it are reported as skipped, with the reason."""
    scan = scan_landing_folder(folder)
    files, skipped = scan.files, scan.skipped
    if only_paths:
        wanted = {str(Path(p).resolve()) for p in only_paths}
        files = [f for f in files if str(f.path.resolve()) in wanted]
        skipped = [s for s in skipped if str(s.path.parent.resolve() / s.path.name) in wanted]
    summary = ingest_files(con, files, reference_time=reference_time)
    summary.files.extend(_skipped_path(item) for item in skipped)
    return summary
