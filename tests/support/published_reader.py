"""A reader process for the readers-during-a-run test: queries the marts every second.

    python -m tests.support.published_reader hold|reopen OUT_FILE STOP_FILE RUN_DONE_FILE

`hold` opens ONE connection and keeps it for its whole life (an analyst's session); `reopen`
opens a new connection for every query (a command such as `bis user-metrics`, started at any
moment). Each query appends one JSON line to OUT_FILE: the marts' state, or the error. It
stops after the first query made once STOP_FILE exists. `during_run` records whether
RUN_DONE_FILE was still absent when the query started.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from pipelines.lib.published import open_reader
from pipelines.lib.settings import load_settings

# One row describing the marts; the counts that must agree between related marts sit side by
# side, so a half-built mart (or marts from two different builds) shows as a mismatch.
STATE_SQL = """
select
    (select count(*) from marts.dim_users) as users,
    (select count(*) from marts.user_progress) as progress_rows,
    (select sum(signups) from marts.kpi_daily) as kpi_signups,
    (select count(*) from marts.user_segments) as segment_rows,
    (select count(*) from marts.dim_users where nurture_segment is not null) as users_in_a_segment,
    (select sum(steps_completed) from marts.dim_users) as steps_completed,
    (select max(date) from marts.kpi_daily)::varchar as kpi_date
"""
LEDGER_SQL = "select count(*) from messaging.sends"


def read_state(con: Any) -> dict[str, Any]:
    cursor = con.execute(STATE_SQL)
    names = [d[0] for d in cursor.description]
    state = dict(zip(names, cursor.fetchone(), strict=True))
    state["ledger_rows"] = int(con.execute(LEDGER_SQL).fetchone()[0])
    return state


def main(mode: str, out_file: Path, stop_file: Path, run_done_file: Path) -> int:
    settings = load_settings()
    held = open_reader(settings) if mode == "hold" else None
    with out_file.open("a", encoding="utf-8") as out:
        while True:
            stopping = stop_file.exists()
            line: dict[str, Any] = {"during_run": not run_done_file.exists()}
            try:
                if held is not None:
                    line["state"] = read_state(held)
                else:
                    with open_reader(settings) as con:
                        line["state"] = read_state(con)
            except Exception as exc:  # recorded, and the test fails on it
                line["error"] = f"{type(exc).__name__}: {exc}"
            out.write(json.dumps(line) + "\n")
            out.flush()
            if stopping:
                break
            time.sleep(1.0)
    if held is not None:
        held.close()
    return 0


if __name__ == "__main__":
    mode, out_file, stop_file, run_done_file = sys.argv[1:5]
    sys.exit(main(mode, Path(out_file), Path(stop_file), Path(run_done_file)))
