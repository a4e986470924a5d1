"""The published copy readers open: what it holds, atomic replacement, failures."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from pipelines.cli import main
from pipelines.lib.messaging.preview import UnknownUserError, preview_user
from pipelines.lib.messaging.runtime import PlanInputs
from pipelines.lib.published import (
    PUBLISHED_FILE,
    PublishedCopyMissingError,
    open_reader,
    open_scratch,
    publish,
)
from pipelines.lib.settings import load_settings
from tests.lib.messaging.conftest import (  # noqa: F401 (fixtures)
    MARTS_DDL,
    add_user,
    flags,
    sequences_dir,
    test_sequences,
)

T = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def _add_users(con: duckdb.DuckDBPyConnection, *user_ids: str) -> None:
    con.execute("create schema if not exists marts")
    con.execute("create table if not exists marts.dim_users (user_id varchar not null)")
    con.executemany("insert into marts.dim_users values (?)", [[u] for u in user_ids])


def _users_seen_by_a_new_process(path: Path) -> int:
    script = (
        "import duckdb, sys;"
        "con = duckdb.connect(sys.argv[1], read_only=True);"
        "print(con.execute('select count(*) from marts.dim_users').fetchone()[0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True
    )
    return int(out.stdout)


def test_the_copy_holds_marts_ledger_and_bookkeeping_but_not_raw_events(
    warehouse: duckdb.DuckDBPyConnection, data_dir: Path
) -> None:
    _add_users(warehouse, "u1")
    warehouse.execute("create schema staging")
    warehouse.execute("create view staging.stg as select * from raw.events")
    warehouse.execute(
        "insert into raw.events_rejected values ('f.jsonl', 3, '{', 'invalid_json', 'x', ?)", [T]
    )
    target = data_dir / PUBLISHED_FILE

    result = publish(warehouse, target, as_of=T)

    with duckdb.connect(str(target), read_only=True) as con:
        tables = {
            f"{schema}.{name}"
            for schema, name in con.execute(
                "select table_schema, table_name from information_schema.tables"
            ).fetchall()
        }
        assert con.execute("select as_of, tables from publication").fetchall() == [(T, 8)]
        assert con.execute("select error_code from raw.events_rejected").fetchall() == [
            ("invalid_json",)
        ]
        keys = con.execute(
            "select table_name from duckdb_constraints() where constraint_type = 'PRIMARY KEY'"
        ).fetchall()
    assert tables == {
        "main.publication",
        "marts.dim_users",
        "messaging.plans",
        "messaging.schema_migrations",
        "messaging.sends",
        "messaging.suppressions",
        "raw.email_events_rejected",
        "raw.events_rejected",
        "raw.ingested_files",
    }
    assert sorted(result.tables) == sorted(tables - {"main.publication"})
    assert ("sends",) in keys  # the ledger keeps its definition, not only its rows
    assert sorted(p.name for p in data_dir.iterdir() if "published" in p.name) == [PUBLISHED_FILE]


def test_an_open_reader_keeps_its_snapshot_and_a_new_one_sees_the_new_copy(
    warehouse: duckdb.DuckDBPyConnection, data_dir: Path
) -> None:
    target = data_dir / PUBLISHED_FILE
    _add_users(warehouse, "u1")
    publish(warehouse, target, as_of=T)
    old_reader = duckdb.connect(str(target), read_only=True)

    _add_users(warehouse, "u2", "u3")
    publish(warehouse, target, as_of=T)

    assert old_reader.execute("select count(*) from marts.dim_users").fetchone() == (1,)
    assert _users_seen_by_a_new_process(target) == 3
    old_reader.close()
    with open_reader(load_settings()) as reader:
        assert reader.execute("select count(*) from marts.dim_users").fetchone() == (3,)


def test_a_failed_publish_keeps_the_old_copy_and_leaves_no_temp_file(
    warehouse: duckdb.DuckDBPyConnection, data_dir: Path
) -> None:
    target = data_dir / PUBLISHED_FILE
    _add_users(warehouse, "u1")
    publish(warehouse, target, as_of=T)
    before = target.read_bytes()
    # A mart whose rows cannot be read: the copy fails midway, after other tables were copied.
    warehouse.execute("create table marts.gone as select 1 as x")
    warehouse.execute("create view marts.zz_broken as select * from marts.gone")
    warehouse.execute("drop table marts.gone")
    _add_users(warehouse, "u2")

    with pytest.raises(duckdb.Error, match="gone"):
        publish(warehouse, target, as_of=T)

    assert target.read_bytes() == before
    assert sorted(p.name for p in data_dir.iterdir() if "published" in p.name) == [PUBLISHED_FILE]
    # The writer's connection is as it was: its own catalog, nothing attached.
    assert warehouse.execute("select current_database()").fetchone() == ("warehouse",)
    assert warehouse.execute("select count(*) from marts.dim_users").fetchone() == (2,)
    attached = warehouse.execute("select database_name from duckdb_databases()").fetchall()
    assert ("bis_publishing",) not in attached


def test_temp_files_of_a_killed_publish_are_removed_by_the_next(
    warehouse: duckdb.DuckDBPyConnection, data_dir: Path
) -> None:
    leftovers = [
        data_dir / f".{PUBLISHED_FILE}.0123abcd.tmp",
        data_dir / f".{PUBLISHED_FILE}.x.tmp.wal",
    ]
    for path in leftovers:
        path.write_bytes(b"half a database")
    _add_users(warehouse, "u1")
    publish(warehouse, data_dir / PUBLISHED_FILE, as_of=T)
    assert not any(path.exists() for path in leftovers)


def test_without_a_copy_readers_are_told_to_run_bis_run_first(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(PublishedCopyMissingError, match=r"run `bis run` first"):
        open_reader(load_settings())
    assert main(["user-metrics", "u1"]) == 1
    err = capsys.readouterr().err
    assert f"no published copy of the warehouse at {data_dir / PUBLISHED_FILE}" in err


def test_preview_decides_on_the_published_copy_and_writes_nothing(
    warehouse: duckdb.DuckDBPyConnection, data_dir: Path, request: pytest.FixtureRequest
) -> None:
    warehouse.execute(MARTS_DDL)
    add_user(warehouse, "tokyo", steps=1, segment="stalled", timezone="Asia/Tokyo")
    target = data_dir / PUBLISHED_FILE
    publish(warehouse, target, as_of=T)
    add_user(warehouse, "later", steps=1, segment="stalled")  # not published yet
    published_bytes = target.read_bytes()
    # The planner tests' small sequences (imported fixtures) and the committed flags.
    inputs = PlanInputs(request.getfixturevalue("test_sequences"), request.getfixturevalue("flags"))

    with open_scratch(load_settings()) as con:
        lines = preview_user(con, "tokyo", inputs, env="dev", as_of=T)
        with pytest.raises(UnknownUserError):
            preview_user(con, "later", inputs, env="dev", as_of=T)

    assert "NEXT: nudge_a/first → deferred (quiet hours: 00:00 in Asia/Tokyo)" in lines
    assert target.read_bytes() == published_bytes
    assert warehouse.execute("select count(*) from messaging.sends").fetchone() == (0,)
