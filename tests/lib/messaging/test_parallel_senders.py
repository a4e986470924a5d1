"""Parallel send workers on PostgreSQL (docs/architecture.md §16): four workers, 20,000
planned messages, the local SendGrid server counting every accepted message.

One worker is killed with SIGKILL while the provider holds its request: only the rows it had
claimed may end `unknown`; every other message is accepted exactly once and ends `sent`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from pipelines.lib.engine.url import parse_warehouse_url
from pipelines.lib.messaging.checks import INVARIANTS, violations
from pipelines.lib.messaging.send import send_planned
from pipelines.lib.warehouse import open_warehouse
from tests.lib.messaging.conftest import MARTS_DDL, T
from tests.lib.messaging.test_send import dev_gate, sendgrid
from tests.support.fake_sendgrid import FakeSendGrid
from tests.support.postgres import fresh_database, running_server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
MESSAGES = 20_000
WORKERS = 4
TEMPLATES = ("test/first", "test/second")
SEND_COLUMNS = (
    "send_id", "user_id", "email", "sequence_id", "step_id", "template", "enrollment_key",
    "status", "variant", "flag_key", "flag_state", "flag_reason", "attempts", "due_at",
    "plan_id", "planned_at", "updated_at",
)  # fmt: skip

WORKER = """
import json, sys
from pathlib import Path
from types import SimpleNamespace
from pipelines.lib.engine.url import parse_warehouse_url
from pipelines.lib.messaging.send import send_planned
from pipelines.lib.warehouse import open_warehouse
from tests.lib.messaging.test_send import T, dev_gate, sendgrid

url, host, key, templates, run_id = sys.argv[1:6]
sender = sendgrid(SimpleNamespace(api_key=key, url=host), Path(templates), timeout=60)
with open_warehouse(parse_warehouse_url(url)) as con:
    report = send_planned(con, sender=sender, run_id=run_id, max_sends_per_run=100_000,
                          gate=dev_gate(), clock=T)
print(json.dumps({"run_id": run_id, "statuses": dict(report.statuses),
                  "requests": report.requests}))
"""


def plant_postgres(con, count: int) -> None:
    """`count` planned rows (and their users) over TEMPLATES, loaded with COPY."""
    con.execute(MARTS_DDL.replace("create or replace table", "create table"))
    users = [f"u{i:05d}" for i in range(count)]
    con.copy_rows(
        "marts.dim_users",
        ("user_id", "email", "name", "timezone", "has_valid_timezone"),
        ((u, f"{u}@example.com", f"Ann {u}", "UTC", True) for u in users),
    )
    con.copy_rows(
        "marts.user_progress",
        ("user_id", "steps_completed", "next_step_name"),
        ((u, 1, "First Project Created") for u in users),
    )
    at = T - timedelta(hours=1)
    rows = []
    for i, user in enumerate(users):
        template = TEMPLATES[i % len(TEMPLATES)]
        rows.append((
            f"s{i:05d}", user, f"{user}@example.com", "seq", template, template, at,
            "planned", "treatment", "nurture_stalled", "on", "on", 0, at, "p1", at, at,
        ))  # fmt: skip
    con.copy_rows("messaging.sends", SEND_COLUMNS, rows)


def worker(url: str, server: FakeSendGrid, templates: Path, run_id: str, script: Path):
    return subprocess.Popen(
        [sys.executable, str(script), url, server.url, server.api_key, str(templates), run_id],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_four_workers_send_20000_messages_once_and_a_killed_one_leaves_only_its_rows(
    tmp_path: Path, sequences_dir: Path
) -> None:
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(WORKER))
    with running_server() as pg:
        url_text = fresh_database(pg)
        url = parse_warehouse_url(url_text)
        with open_warehouse(url) as con:
            plant_postgres(con, MESSAGES)
        templates = sequences_dir / "templates"
        with FakeSendGrid() as server:
            # The 6th request waits 5 s before it is accepted: long enough to kill its worker
            # after its rows were claimed and before any answer reached it.
            server.delay_next(5, when=lambda request: len(server.requests) >= 6)
            runs = {
                f"w{n}": worker(url_text, server, templates, f"w{n}", script)
                for n in range(WORKERS)
            }
            deadline = time.monotonic() + 120
            while len(server.requests) < 6 and time.monotonic() < deadline:
                died = [p for p in runs.values() if p.poll() is not None]
                assert not died, died[0].communicate()[1][-3000:]
                time.sleep(0.02)
            assert len(server.requests) >= 6, "the workers never reached the sixth request"
            held = server.requests[5].send_ids
            with open_warehouse(url) as con:
                owners = con.execute(
                    "select distinct send_run_id, status from messaging.sends"
                    " where send_id in (select unnest(cast($ids as varchar[])))",
                    {"ids": held},
                ).fetchall()
            assert len(owners) == 1 and owners[0][1] == "sending", owners
            victim = owners[0][0]
            os.kill(runs[victim].pid, signal.SIGKILL)
            outputs = {}
            for run_id, process in runs.items():
                out, err = process.communicate(timeout=300)
                outputs[run_id] = (process.returncode, out, err)
            assert server.wait_for_requests(len(server.requests), timeout=30)
            accepted = Counter(server.accepted_send_ids())
        assert outputs[victim][0] == -signal.SIGKILL
        reports = [json.loads(out) for run_id, (code, out, err) in outputs.items()
                   if run_id != victim and code == 0]  # fmt: skip
        assert len(reports) == WORKERS - 1, {k: (c, e[-2000:]) for k, (c, _, e) in outputs.items()}
        # More than one surviving worker did real work: the claims were shared, not serialized.
        assert sum(1 for r in reports if r["statuses"].get("sent")) >= 2, reports

        with open_warehouse(url) as con:
            # A later run finds the dead worker's claimed rows and marks them unknown.
            with FakeSendGrid() as after:
                report = send_planned(
                    con, sender=sendgrid(after, templates), run_id="after",
                    max_sends_per_run=100_000, gate=dev_gate(), clock=T,
                )  # fmt: skip
                assert after.accepted_send_ids() == []
            rows = con.execute(
                "select send_id, status, send_run_id from messaging.sends"
            ).fetchall()
            for name in INVARIANTS:
                assert violations(con, name) == [], name
    status_of = {send_id: status for send_id, status, _ in rows}
    unknown = {send_id for send_id, status, _ in rows if status == "unknown"}
    assert len(rows) == MESSAGES
    assert set(status_of.values()) <= {"sent", "unknown"}
    # Only the killed worker's claimed rows are unknown: the batch the provider held (a worker
    # claims one batch at a time, and sends it before it claims the next).
    assert {run for _, status, run in rows if status == "unknown"} == {victim}
    assert unknown == set(held)
    assert report.orphans_marked_unknown == len(unknown)
    # Each message accepted exactly once: every `sent` row, and the held batch, which the
    # provider took after its worker died (so `unknown` rows may have gone out, never twice).
    assert max(accepted.values()) == 1
    assert set(accepted) == {s for s, status in status_of.items() if status == "sent"} | unknown
