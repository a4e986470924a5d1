"""Which landing files are new or changed since the sensor last looked (no warehouse access).

The cursor remembers size, mtime and sha256 per path, so a file is hashed again only when
its size or mtime moved; its run key is path and content hash, so the same content never
starts a second run and changed content always does. Links and special files are never
opened (see files.py) and a file that cannot be read is passed over, not fatal: one bad
path must not stop the sensor from seeing the others.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.lib.ingest.files import handle_sha256, open_landing_file, scan_landing_folder


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
    # path → why it is not read (a link, a special file, unreadable), for the operator.
    passed_over: dict[str, str] = field(default_factory=dict)

    def skip_reason(self, folder: Path) -> str:
        if not folder.exists():
            return f"landing folder {folder} does not exist yet (run `bis generate` or drop files)"
        if self.unchanged == 0:
            reason = f"no event files (.jsonl, .jsonl.gz, .parquet, .csv) in {folder}"
        else:
            reason = f"no new or changed files in {folder} ({self.unchanged} unchanged)"
        if self.passed_over:
            shown = "; ".join(
                f"{Path(path).name}: {why}" for path, why in sorted(self.passed_over.items())[:5]
            )
            reason += f"; not read: {len(self.passed_over)} ({shown})"
        return reason


def find_changed_files(folder: Path, cursor: str | None) -> WatchResult:
    """Compare the folder with the cursor; returns what changed and the next cursor."""
    previous: dict[str, list] = json.loads(cursor) if cursor else {}
    state: dict[str, list] = {}
    changed: list[ChangedFile] = []
    scan = scan_landing_folder(folder)
    passed_over = {str(item.path): item.reason for item in scan.skipped}
    for landing in scan.files:
        key = str(landing.path)
        seen = previous.get(key)
        if seen and seen[0] == landing.size_bytes and seen[1] == landing.mtime_ns:
            state[key] = seen
            continue
        try:
            with open_landing_file(landing.path) as handle:
                sha256 = handle_sha256(handle)
        except OSError as exc:  # unreadable, vanished, or swapped for a link: look again later
            passed_over[key] = getattr(exc, "reason", None) or f"cannot be read ({exc})"
            continue
        state[key] = [landing.size_bytes, landing.mtime_ns, sha256]
        if not seen or seen[2] != sha256:
            changed.append(ChangedFile(key, sha256))
    unchanged = len(state) - len(changed)
    return WatchResult(changed, unchanged, json.dumps(state, sort_keys=True), passed_over)
