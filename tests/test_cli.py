"""`bis generate` then `bis run`, twice: the second run loads nothing new."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines.cli import main

AS_OF = "2026-11-24T09:30:00Z"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _loaded(output: str) -> tuple[int, int, int]:
    match = re.search(r"events loaded: (\d+), rejected: (\d+), duplicate: (\d+)", output)
    assert match, output
    return tuple(int(group) for group in match.groups())


@pytest.mark.slow  # the whole pipeline, dbt included, twice
def test_generate_then_run_twice(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(
        capsys, "generate", "--users", "200", "--days", "30", "--bad-lines", "12", "--as-of", AS_OF
    )
    assert code == 0, out
    assert "wrote " in out and "12 malformed records" in out

    code, first = _run(capsys, "run", "--as-of", AS_OF)
    assert code == 0, first
    loaded, rejected, _ = _loaded(first)
    assert loaded > 1000 and rejected == 12
    assert "files ingested: 1" in first

    # The same day regenerates byte-identical data: nothing new is loaded.
    _run(
        capsys, "generate", "--users", "200", "--days", "30", "--bad-lines", "12", "--as-of", AS_OF
    )
    code, second = _run(capsys, "run", "--as-of", AS_OF)
    assert code == 0, second
    assert _loaded(second) == (0, 0, 0)
    assert "already ingested, skipped: 1" in second


def test_bad_arguments_are_refused(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(capsys, "generate", "--users", "0")
    assert code == 2 and "--users" in out
    code, out = _run(capsys, "run", "--as-of", "not-a-date")
    assert code == 1 and "not an ISO 8601 timestamp" in out
