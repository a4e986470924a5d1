"""The landing sensor's file watching: run keys are path:sha256, and say why they skip."""

from __future__ import annotations

import os
from pathlib import Path

from pipelines.lib.ingest.watch import find_changed_files
from tests.conftest import write_jsonl

RECORD = {
    "type": "track",
    "event": "Signed Up",
    "userId": "u-1",
    "timestamp": "2026-11-01T10:00:00Z",
}


def test_new_file_then_nothing_new(landing: Path) -> None:
    path = write_jsonl(landing / "a.jsonl", [RECORD])

    first = find_changed_files(landing, None)
    second = find_changed_files(landing, first.cursor)

    assert [c.path for c in first.changed] == [str(path)]
    assert first.changed[0].run_key.startswith(f"{path}:")
    assert len(first.changed[0].run_key) == len(str(path)) + 1 + 64
    assert second.changed == []
    assert second.skip_reason(landing) == f"no new or changed files in {landing} (1 unchanged)"


def test_changed_content_gets_a_new_run_key(landing: Path) -> None:
    path = write_jsonl(landing / "a.jsonl", [RECORD])
    first = find_changed_files(landing, None)
    write_jsonl(path, [RECORD, {**RECORD, "userId": "u-2"}])

    second = find_changed_files(landing, first.cursor)

    assert len(second.changed) == 1
    assert second.changed[0].run_key != first.changed[0].run_key


def test_touched_but_same_content_starts_no_run(landing: Path) -> None:
    path = write_jsonl(landing / "a.jsonl", [RECORD])
    first = find_changed_files(landing, None)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))

    second = find_changed_files(landing, first.cursor)

    assert second.changed == []


def test_ignores_partial_and_foreign_files(landing: Path) -> None:
    (landing / ".in-progress.jsonl").write_text("{}\n")
    (landing / "upload.jsonl.tmp").write_text("{}\n")
    (landing / "notes.txt").write_text("hello\n")

    result = find_changed_files(landing, None)

    assert result.changed == []
    assert "no event files" in result.skip_reason(landing)


def test_missing_folder_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "nowhere"
    result = find_changed_files(folder, None)
    assert result.changed == []
    assert "does not exist" in result.skip_reason(folder)
