"""`bis sequences check` passes on the committed files and fails with file:line on a typo."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.lib.settings import SEQUENCES_DIR


def test_committed_sequences_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sequences", "check"]) == 0
    assert "sequences OK" in capsys.readouterr().out


def test_broken_copy_fails_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "sequences"
    shutil.copytree(SEQUENCES_DIR, broken)
    stalled = broken / "stalled.yaml"
    lines = stalled.read_text().splitlines()
    [index] = [i for i, line in enumerate(lines) if line.startswith("exit_when:")]
    lines[index] = 'exit_when: "step_completed = 4"'
    stalled.write_text("\n".join(lines) + "\n")

    code = main(["sequences", "check", "--folder", str(broken)])

    out = capsys.readouterr().out
    assert code == 1
    assert f"stalled.yaml:{index + 1}:" in out
    assert "did you mean 'steps_completed'" in out
