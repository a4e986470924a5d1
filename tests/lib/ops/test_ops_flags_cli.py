"""`bis flags list/set` on a copy of flags.yaml, with reach from a small warehouse."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from pipelines.lib.flags import load_flags, unleash_bucket
from pipelines.lib.ops.flags_cli import flags_list, flags_set
from pipelines.lib.settings import FLAGS_FILE

USERS = [f"u{n:03d}" for n in range(200)]
ADMINS = {"u001", "u002", "u003"}
KEY = "onboarding_momentum"


@pytest.fixture
def flags_path(tmp_path: Path) -> Path:
    path = tmp_path / "flags.yaml"
    shutil.copyfile(FLAGS_FILE, path)
    return path


@pytest.fixture
def warehouse_path(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema marts")
    con.execute("create table marts.dim_users (user_id varchar, is_admin boolean)")
    con.executemany("insert into marts.dim_users values (?, ?)", [(u, u in ADMINS) for u in USERS])
    con.close()
    return path


def _expected_rollout(percent: int) -> int:
    return sum(1 for user in USERS if unleash_bucket(KEY, user) <= percent)


def test_set_prints_before_after_and_reach(flags_path: Path, warehouse_path: Path) -> None:
    code, lines = flags_set(flags_path, KEY, "rollout", 50, "prod", False, warehouse_path)
    assert code == 0
    assert lines[0].startswith(f"{KEY} [prod]: off -> rollout 50%")
    expected = _expected_rollout(50)
    assert 0 < expected < len(USERS)
    assert f"reach: {expected} of 200 users" in lines[1]
    assert load_flags(flags_path).setting(KEY, "prod").percent == 50
    assert any("`messaging` is off in prod" in line for line in lines)


def test_set_admins_reaches_the_admins(flags_path: Path, warehouse_path: Path) -> None:
    code, lines = flags_set(flags_path, KEY, "on", None, "staging", False, warehouse_path)
    assert code == 0 and "reach: 200 of 200 users" in lines[1]
    code, lines = flags_set(flags_path, KEY, "admins", None, "staging", True, warehouse_path)
    assert code == 0
    assert lines[0] == f"{KEY} [staging]: on -> admins (wrote {flags_path})"
    assert "reach: 3 of 200 users" in lines[1]


def test_set_without_warehouse_says_so(flags_path: Path, tmp_path: Path) -> None:
    code, lines = flags_set(flags_path, KEY, "on", None, "dev", False, tmp_path / "none.duckdb")
    assert code == 0
    assert "unchanged" in lines[0]
    assert lines[1] == "reach: warehouse not built yet"


def test_unknown_key_lists_known_keys(flags_path: Path) -> None:
    before = flags_path.read_bytes()
    code, lines = flags_set(flags_path, "onboarding", "on", None, "prod", False, None)
    assert code == 2 and len(lines) == 1
    assert "unknown flag 'onboarding'" in lines[0]
    assert "messaging" in lines[0] and KEY in lines[0]
    assert flags_path.read_bytes() == before


def test_percent_outside_range_is_refused(flags_path: Path) -> None:
    before = flags_path.read_bytes()
    code, lines = flags_set(flags_path, KEY, "rollout", 150, "prod", False, None)
    assert code == 2 and len(lines) == 1
    assert "150" in lines[0] and "0-100" in lines[0]
    assert flags_path.read_bytes() == before


def test_lowering_a_live_rollout_needs_force(flags_path: Path, warehouse_path: Path) -> None:
    assert flags_set(flags_path, KEY, "rollout", 50, "prod", False, warehouse_path)[0] == 0
    code, lines = flags_set(flags_path, KEY, "rollout", 10, "prod", False, warehouse_path)
    assert code == 2 and len(lines) == 1
    assert "--force" in lines[0]
    assert load_flags(flags_path).setting(KEY, "prod").percent == 50

    code, lines = flags_set(flags_path, KEY, "rollout", 10, "prod", True, warehouse_path)
    assert code == 0
    assert lines[0].startswith(f"{KEY} [prod]: rollout 50% -> rollout 10%")
    assert f"reach: {_expected_rollout(10)} of 200 users" in lines[1]
    assert load_flags(flags_path).setting(KEY, "prod").percent == 10


def test_list_shows_states_reach_and_descriptions(flags_path: Path, warehouse_path: Path) -> None:
    flags_set(flags_path, KEY, "rollout", 50, "prod", False, None)
    lines = flags_list(flags_path, warehouse=warehouse_path)
    assert lines[0].split()[:4] == ["FLAG", "DEV", "STAGING", "PROD"]
    row = next(line for line in lines if line.startswith(KEY))
    assert "on (200)" in row and "admins (3)" in row
    assert f"rollout 50% ({_expected_rollout(50)})" in row
    assert "Four-step onboarding" in row
    assert len([line for line in lines[1:] if not line.startswith("(")]) == 7


def test_list_one_env_without_warehouse(flags_path: Path) -> None:
    lines = flags_list(flags_path, env_filter="prod")
    assert lines[0].split()[:3] == ["FLAG", "PROD", "DESCRIPTION"]
    assert "STAGING" not in lines[0]
    assert lines[-1] == "reach: warehouse not built yet"
