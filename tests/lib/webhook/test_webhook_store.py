"""The durable append on its own: exact lines, temp-then-rename, nothing half-written."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines.lib.webhook import append_events, split_events
from pipelines.lib.webhook.store import MalformedPayload
from tests.lib.webhook.webhook_helpers import final_files, landed_files, read_lines

RECEIVED = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC).timestamp()


def test_split_keeps_each_object_text_exactly() -> None:
    body = b'[ {"b":1,  "a":"x,y]"} ,{"nested":{"k":[1,2,{"z":null}]}}\t]'
    assert split_events(body) == ['{"b":1,  "a":"x,y]"}', '{"nested":{"k":[1,2,{"z":null}]}}']


def test_split_turns_newlines_between_tokens_into_spaces_only() -> None:
    body = b'[\r\n  {\n    "a": "line\\nbreak"\n  }\n]\n'
    [event] = split_events(body)
    assert "\n" not in event and "\r" not in event
    assert json.loads(event) == {"a": "line\nbreak"}  # the escaped newline is untouched


DEEP = [b'[{"a": ' + b"[" * 64 + b"]" * 64 + b"}]", b"[" * 100_000 + b"]" * 100_000]


@pytest.mark.parametrize("body", [b"[", b"[{}", b"{}", b"\xff", b"[{}] x", b"null", *DEEP])
def test_split_rejects_what_is_not_an_array(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        split_events(body)


def test_split_keeps_elements_that_are_not_objects_for_the_loader_to_reject() -> None:
    # A refused batch is retried, then dropped by SendGrid with every good event in it.
    assert split_events(b'[{"a":1}, [], 2, "x", null]') == ['{"a":1}', "[]", "2", '"x"', "null"]


def test_append_writes_final_file_in_day_folder(tmp_path: Path) -> None:
    path = append_events(tmp_path / "landing", ['{"a":1}', '{"b":2}'], received_at=RECEIVED)

    assert path.parent == tmp_path / "landing" / "20260102"
    assert path.name.startswith("20260102T030405678901Z-")
    assert path.suffix == ".jsonl"
    assert read_lines(path) == ['{"a":1}', '{"b":2}']
    assert landed_files(tmp_path) == [path]


def test_before_commit_sees_only_a_temp_file_ingestion_ignores(tmp_path: Path) -> None:
    seen: list[tuple[Path, bytes, list[Path]]] = []

    def hook(temp: Path) -> None:
        seen.append((temp, temp.read_bytes(), final_files(tmp_path)))

    path = append_events(tmp_path, ['{"a":1}'], received_at=RECEIVED, before_commit=hook)

    [(temp, content, finals_then)] = seen
    assert temp.name.startswith(".") and temp.name.endswith(".tmp")
    assert temp.parent == path.parent
    assert content == b'{"a":1}\n'  # fully written (and fsynced) before the rename
    assert finals_then == []  # nothing visible to ingestion yet
    assert not temp.exists()


def test_failure_before_rename_removes_the_temp_file_and_raises(tmp_path: Path) -> None:
    def boom(_temp: Path) -> None:
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        append_events(tmp_path, ['{"a":1}'], received_at=RECEIVED, before_commit=boom)
    assert landed_files(tmp_path) == []


def test_same_instant_twice_gives_two_files(tmp_path: Path) -> None:
    first = append_events(tmp_path, ['{"a":1}'], received_at=RECEIVED)
    second = append_events(tmp_path, ['{"a":1}'], received_at=RECEIVED)
    assert first != second
    assert final_files(tmp_path) == sorted([first, second])


def test_unsigned_files_are_marked(tmp_path: Path) -> None:
    path = append_events(tmp_path, ['{"a":1}'], received_at=RECEIVED, unsigned=True)
    assert path.name.endswith(".unsigned.jsonl")
