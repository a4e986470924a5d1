"""The hand-made dataset through the whole pipeline: Segment-spec JSON Lines in the landing
folder → `bis run` (ingest → dbt build) → marts equal to the values computed by hand, on both
warehouse engines (docs/architecture.md §16)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.lib.warehouse import connect
from tests.conftest import ENGINES
from tests.dbt.conftest import AS_OF, handmade_events
from tests.dbt.test_handmade_dataset import EXPECTED_USERS


def as_segment_record(row: dict) -> dict:
    """A raw.events fixture row as the Segment message that would have produced it."""
    record = {
        "type": row["event_type"],
        "messageId": row["event_id"],
        "timestamp": row["occurred_at"],
    }
    if row["user_id"] is not None:
        record["userId"] = row["user_id"]
    if row["anonymous_id"] is not None:
        record["anonymousId"] = row["anonymous_id"]
    if row["event_type"] == "track":
        record["event"] = row["event_name"]
    elif row["event_type"] == "page":
        record["name"] = row["event_name"]
    for field in ("properties", "traits"):
        if row.get(field) is not None:
            record[field] = row[field]
    return record


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.mark.slow
def test_handmade_events_through_bis_run(
    landing: Path, warehouse_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    events = handmade_events()
    with (landing / "handmade.jsonl").open("w") as handle:
        for row in events:
            handle.write(json.dumps(as_segment_record(row)) + "\n")

    code = main(["run", "--as-of", AS_OF])
    output = capsys.readouterr().out

    assert code == 0, output
    assert f"events loaded: {len(events)}, rejected: 0, duplicate: 0" in output
    assert re.search(r"Onboarding conversion\s+70\.0%", output), output  # 7/10
    assert re.search(r"Onboarding completion\s+87\.5%", output), output  # 7/8
    assert re.search(r"Inactivity\s+21\.4%", output), output  # 3/14
    with connect(warehouse_url, read_only=True) as con:
        rows = con.execute(
            """
            select user_id, steps_completed, is_converted, is_inactive, lifecycle_stage,
                   nurture_segment
            from marts.dim_users order by user_id
            """
        ).fetchall()
    assert {row[0]: row[1:] for row in rows} == {
        user: expected[:5] for user, expected in EXPECTED_USERS.items()
    }
