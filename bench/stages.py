"""One benchmark stage per process: `python -m bench.stages STAGE CONFIG.json`.

bench/run.py starts every stage in a fresh process and reads its peak RSS from os.wait4, so
each stage's memory is its own (imports included, nothing left over from earlier stages).
A stage times only its own work and writes a JSON result next to its config.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from bench import stages_compare, stages_load, stages_postgres, stages_send
from bench.stage_kit import Config, Result

STAGES: dict[str, Callable[[Config], Result]] = {
    name.removeprefix("stage_"): function
    for module in (stages_load, stages_compare, stages_send, stages_postgres)
    for name, function in vars(module).items()
    if name.startswith("stage_")
}


def main(argv: list[str]) -> int:
    name, config_path = argv
    cfg = Config(json.loads(Path(config_path).read_text()))
    result = STAGES[name](cfg)
    Path(config_path).with_suffix(".result.json").write_text(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
