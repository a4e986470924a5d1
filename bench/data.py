"""Benchmark data: one simulated population, split into 60 days of history and one more day.

The sample is generated once for a 61-day window ending at T1 = T0 + 1 day, then split by
`receivedAt`: records received before T0 are the history, the rest is "one more day of
events" from the same users (about 1/60 of the history). Splitting one simulation (instead of
simulating twice) keeps the increment consistent with the history: the same users carry on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines.lib.sample_data.generate import generate_sample

HISTORY_DAYS = 60
# Valid events per simulated user over 61 days (measured: 109,253 events for 5,000 users).
# Used only to pick the number of users for a requested event count; the actual count is
# what gets reported.
EVENTS_PER_USER = 21.85 * HISTORY_DAYS / (HISTORY_DAYS + 1)
SEED = 7
_RECEIVED_KEY = b'"receivedAt":"'


@dataclass(frozen=True)
class BenchData:
    history_jsonl: Path
    history_parquet: Path
    increment_parquet: Path
    users: int
    history_events: int  # records in the history files (duplicates included, as delivered)
    increment_events: int


def users_for(events: int) -> int:
    return max(50, round(events / EVENTS_PER_USER))


def iso_ms(moment: datetime) -> str:
    """The sample's timestamp format (`2026-10-01T09:15:02.123Z`): compares as text."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _split_jsonl(source: Path, history: Path, cut: str) -> int:
    """Copy the lines received before `cut` to `history`; returns how many were copied."""
    cut_bytes = cut.encode()
    width = len(cut_bytes)
    kept = 0
    with source.open("rb", buffering=1 << 22) as src, history.open("wb", 1 << 22) as out:
        for line in src:
            start = line.find(_RECEIVED_KEY) + len(_RECEIVED_KEY)
            if line[start : start + width] < cut_bytes:
                out.write(line)
                kept += 1
    return kept


def _split_parquet(source: Path, history: Path, increment: Path, cut: str) -> tuple[int, int]:
    parquet = pq.ParquetFile(source)
    counts = [0, 0]
    writers = [
        pq.ParquetWriter(history, parquet.schema_arrow, compression="zstd"),
        pq.ParquetWriter(increment, parquet.schema_arrow, compression="zstd"),
    ]
    try:
        for batch in parquet.iter_batches(batch_size=100_000):
            table = pa.Table.from_batches([batch])
            early = pc.less(table["receivedAt"], cut)
            for index, part in enumerate((table.filter(early), table.filter(pc.invert(early)))):
                if part.num_rows:
                    writers[index].write_table(part)
                    counts[index] += part.num_rows
    finally:
        for writer in writers:
            writer.close()
    return counts[0], counts[1]


def make_bench_data(work: Path, *, events: int, t0: datetime) -> BenchData:
    """Generate ~`events` history events ending at `t0`, plus the day after, into `work`."""
    users = users_for(events)
    t1 = t0 + timedelta(days=1)
    scratch = work / "generated"
    paths = {
        "jsonl": work / "landing_jsonl" / "history.jsonl",
        "parquet": work / "landing_parquet" / "history.parquet",
        "increment": work / "landing_increment" / "increment.parquet",
    }
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    cut = iso_ms(t0)
    counts: dict[str, int] = {}
    for fmt in ("jsonl", "parquet"):
        generated = generate_sample(
            out_dir=scratch,
            end_at=t1,
            users=users,
            days=HISTORY_DAYS + 1,
            seed=SEED,
            fmt=fmt,
            progress=False,
        )
        [full] = generated.files
        if fmt == "jsonl":
            counts["jsonl"] = _split_jsonl(full, paths["jsonl"], cut)
        else:
            counts["parquet"], counts["increment"] = _split_parquet(
                full, paths["parquet"], paths["increment"], cut
            )
        full.unlink()  # the split copies are all that is needed; the full file is large
    if counts["jsonl"] != counts["parquet"]:
        raise RuntimeError(f"JSONL and Parquet histories differ: {counts}")
    return BenchData(
        history_jsonl=paths["jsonl"],
        history_parquet=paths["parquet"],
        increment_parquet=paths["increment"],
        users=users,
        history_events=counts["parquet"],
        increment_events=counts["increment"],
    )
