"""generate_sample: simulate users one by one and stream their events into one file."""

from __future__ import annotations

import multiprocessing
import os
import random
import sys
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.pool import AsyncResult, Pool
from pathlib import Path

from tqdm import tqdm

from pipelines.lib.sample_data.bad_records import BadRecordFactory
from pipelines.lib.sample_data.records import to_ms
from pipelines.lib.sample_data.simulate import UserSimulator
from pipelines.lib.sample_data.writers import FORMATS, Item, open_writer, renderer_for

# Segment delivers at least once: this share of records arrives again, later in the file.
DUPLICATE_RATE = 0.005
# A re-sent record shows up within the next few dozen users' batches.
_MAX_DUPLICATE_DELAY_USERS = 40

# Large samples simulate in worker processes. Every user has its own RNG, so the output
# is byte-identical whatever the number of workers; small samples are not worth the
# extra processes.
PARALLEL_MIN_USERS = 40_000
_MAX_WORKERS = 4  # beyond this the single writer is the bottleneck
_CHUNK_USERS = 1_000

# One user's id and rendered records.
UserBatch = tuple[str, list[Item]]


@dataclass(frozen=True)
class GenerateResult:
    files: list[Path]  # files written
    users: int
    events: int  # valid event records written, duplicates included
    duplicates: int  # of those, exact re-sends of an earlier record (same messageId)
    bad_records: dict[str, int]  # expected rejection code -> count of malformed records


def sample_file_name(*, seed: int, users: int, days: int, end_at: datetime, fmt: str) -> str:
    return f"sample_s{seed}_u{users}_d{days}_{end_at:%Y%m%d}.{fmt}"


def generate_sample(
    *,
    out_dir: Path,
    end_at: datetime,
    users: int = 5000,
    days: int = 60,
    seed: int = 7,
    fmt: str = "jsonl",
    bad_lines: int = 0,
    progress: bool = True,
) -> GenerateResult:
    """Write a deterministic sample of Segment events that ends just before `end_at`.

    The file appears atomically (written under a hidden temporary name, then renamed),
    so a landing sensor never sees half of it.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if users < 1 or days < 1 or bad_lines < 0:
        raise ValueError("users and days must be at least 1 and bad_lines not negative")
    # A naive clock is UTC, as everywhere in the pipeline (see pipelines.lib.clock).
    end_at = end_at.replace(tzinfo=UTC) if end_at.tzinfo is None else end_at.astimezone(UTC)
    end_ms = to_ms(end_at)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / sample_file_name(seed=seed, users=users, days=days, end_at=end_at, fmt=fmt)
    # Hidden and without the format suffix, so no glob for *.jsonl etc. matches it.
    tmp = out_dir / f".{final.name}.{os.getpid()}.partial"

    bad = BadRecordFactory(seed=seed, end_ms=end_ms, days=days, fmt=fmt)
    bad_plan = bad.plan(users, bad_lines)
    bad_counts = {code: 0 for code in bad.codes}
    dup_rng = random.Random(f"bis-sample:{seed}:duplicates")
    pending: dict[int, list[Item]] = {}  # user index after whose batch a re-send goes
    events = duplicates = 0

    # Enter the batch source first: it forks its workers (if any) before this process
    # opens the output file or the progress bar starts its monitor thread.
    with _UserBatches(seed=seed, end_ms=end_ms, days=days, fmt=fmt, users=users) as source:
        writer = open_writer(fmt, tmp)
        try:
            with tqdm(
                total=users, unit="user", desc=final.name, file=sys.stderr, disable=not progress
            ) as bar:
                for index, (user_id, records) in enumerate(source):
                    for record in records:
                        if dup_rng.random() < DUPLICATE_RATE:
                            due = index + dup_rng.randint(1, _MAX_DUPLICATE_DELAY_USERS)
                            pending.setdefault(due, []).append(record)
                    batch = records
                    resent = pending.pop(index, [])
                    batch.extend(resent)
                    events += len(batch)
                    duplicates += len(resent)
                    for fraction, code in bad_plan.get(index, ()):
                        batch.insert(int(fraction * (len(batch) + 1)), bad.make(code, user_id))
                        bad_counts[code] += 1
                    writer.write(batch)
                    bar.update(1)
            # Re-sends due after the last user go at the end, in due order.
            tail = [record for due in sorted(pending) for record in pending[due]]
            writer.write(tail)
            events += len(tail)
            duplicates += len(tail)
            writer.close()
            os.replace(tmp, final)
        except BaseException:
            try:
                writer.close()
            finally:
                tmp.unlink(missing_ok=True)
            raise

    return GenerateResult(
        files=[final],
        users=users,
        events=events,
        duplicates=duplicates,
        bad_records={code: n for code, n in bad_counts.items() if n},
    )


# -- simulation, in process or in workers ------------------------------------------------


def _simulate_range(
    seed: int, end_ms: int, days: int, fmt: str, start: int, stop: int
) -> list[UserBatch]:
    """Users start..stop-1, rendered for the writer (runs in a worker process too)."""
    simulator = UserSimulator(seed=seed, end_ms=end_ms, days=days)
    render = renderer_for(fmt)
    out: list[UserBatch] = []
    for index in range(start, stop):
        user_id, records = simulator.simulate(index)
        out.append((user_id, [render(r) for r in records]))
    return out


def _worker_count(users: int) -> int:
    # Workers are forked: cheap, and no re-import of the caller's __main__ (which spawn
    # needs and which breaks unguarded scripts). Fork is only safe enough on Linux.
    if users < PARALLEL_MIN_USERS or sys.platform != "linux":
        return 1
    return min(len(os.sched_getaffinity(0)), _MAX_WORKERS)


class _UserBatches:
    """Every user's batch in user order, simulated in process or by a pool of workers.

    Enter it before starting anything that runs threads (the progress bar): the pool
    forks its workers on entry, while the process is still single-threaded.
    """

    def __init__(self, *, seed: int, end_ms: int, days: int, fmt: str, users: int) -> None:
        self._args = (seed, end_ms, days, fmt)
        self._chunks = [
            (start, min(start + _CHUNK_USERS, users)) for start in range(0, users, _CHUNK_USERS)
        ]
        self._workers = _worker_count(users)
        self._pool: Pool | None = None

    def __enter__(self) -> _UserBatches:
        if self._workers > 1:
            self._pool = multiprocessing.get_context("fork").Pool(self._workers)
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._pool is not None:
            if exc_type is None:
                self._pool.close()
            else:
                self._pool.terminate()
            self._pool.join()

    def __iter__(self) -> Iterator[UserBatch]:
        if self._pool is None:
            for start, stop in self._chunks:
                yield from _simulate_range(*self._args, start, stop)
            return
        # A bounded window of chunks in flight: results are consumed in order and the
        # writer may be slower than the workers, so submitting everything could fill memory.
        window: deque[AsyncResult[list[UserBatch]]] = deque()
        for start, stop in self._chunks:
            window.append(self._pool.apply_async(_simulate_range, (*self._args, start, stop)))
            if len(window) >= 2 * self._workers:
                yield from window.popleft().get()
        while window:
            yield from window.popleft().get()
