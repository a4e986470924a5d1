"""Which landing files are new or changed since the sensor last looked (no warehouse access).

The cursor remembers size, mtime and sha256 per path, so a file is hashed again only when
its size or mtime moved; its run key is path and content hash, so the same content never
starts a second run and changed content always does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pipelines.lib.ingest.files import discover_landing_files, file_sha256


@dataclass(frozen=True)
class ChangedFile:
    path: str
    sha256: str

    @property
    def run_key(self) -> str:
        return f"{self.path}:{self.sha256}"


@dataclass(frozen=True)
class WatchResult:
    changed: list[ChangedFile]
    unchanged: int
    cursor: str

    def skip_reason(self, folder: Path) -> str:
        if not folder.exists():
            return f"landing folder {folder} does not exist yet (run `bis generate` or drop files)"
        if self.unchanged == 0:
            return f"no event files (.jsonl, .jsonl.gz, .parquet, .csv) in {folder}"
        return f"no new or changed files in {folder} ({self.unchanged} unchanged)"


def find_changed_files(folder: Path, cursor: str | None) -> WatchResult:
    """Compare the folder with the cursor; returns what changed and the next cursor."""
    previous: dict[str, list] = json.loads(cursor) if cursor else {}
    state: dict[str, list] = {}
    changed: list[ChangedFile] = []
    for landing in discover_landing_files(folder):
        key = str(landing.path)
        seen = previous.get(key)
        if seen and seen[0] == landing.size_bytes and seen[1] == landing.mtime_ns:
            state[key] = seen
            continue
        sha256 = file_sha256(landing.path)
        state[key] = [landing.size_bytes, landing.mtime_ns, sha256]
        if not seen or seen[2] != sha256:
            changed.append(ChangedFile(key, sha256))
    unchanged = len(state) - len(changed)
    return WatchResult(changed, unchanged, json.dumps(state, sort_keys=True))
