"""The `bis status` report: `OK|WARN|FAIL` lines, long lists summarised."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Level = Literal["OK", "WARN", "FAIL"]
MAX_PROBLEMS = 10  # per check; the rest is summarised


@dataclass
class Report:
    lines: list[tuple[Level, str]] = field(default_factory=list)

    def add(self, level: Level, text: str) -> None:
        self.lines.append((level, text))

    def many(self, level: Level, header: str, problems: list[str]) -> None:
        self.add(level, header)
        for problem in problems[:MAX_PROBLEMS]:
            self.add(level, f"  {problem}")
        if len(problems) > MAX_PROBLEMS:
            self.add(level, f"  ... and {len(problems) - MAX_PROBLEMS} more")

    @property
    def failed(self) -> bool:
        return any(level == "FAIL" for level, _ in self.lines)
