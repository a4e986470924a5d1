"""`bis status`: readiness per environment, exit 1 only when sending is blocked."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.lib.ops.status import StatusPaths, status_report
from pipelines.lib.published import publish_warehouse
from pipelines.lib.settings import DEFAULT_DAGSTER_HOME, SEQUENCES_DIR, Settings, load_settings
from pipelines.lib.warehouse import open_warehouse

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
SECRET = "SG.do-not-print-me-42"
PROD_ENV = {
    "SENDGRID_API_KEY": SECRET,
    "SENDGRID_WEBHOOK_PUBLIC_KEY": "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE-public",
    "BIS_FROM_EMAIL": "hello@acme.test",
    "BIS_UNSUBSCRIBE_URL": "https://acme.test/unsubscribe",
    "BIS_POSTAL_ADDRESS": "Acme, 1 Road, Town",
}


def _build_warehouse(data_dir: Path) -> Path:
    path = data_dir / "warehouse.duckdb"
    with open_warehouse(path) as con:  # applies every migration
        con.execute("create schema if not exists marts")
        con.execute(
            """
            create table marts.dim_users as
            select * from (values
                ('u1', 'ann@acme.test', 'Ann Lee', false, 0, timestamptz '2025-03-01'),
                ('u2', 'bo@acme.test', null, true, 2, timestamptz '2025-02-01')
            ) t(user_id, email, name, is_admin, steps_completed, signed_up_at)
            """
        )
        con.execute(
            """
            create table marts.user_progress as
            select * from (values
                ('u1', 0, 'Create a report', 0.0, 0, 0, 10.0),
                ('u2', 2, 'Invite a teammate', 50.0, 3, 4, 60.0)
            ) t(user_id, steps_completed, next_step_name, percent_complete,
                current_streak_days, active_days_last_7, progress_percentile)
            """
        )
        con.execute(
            """
            create table marts.user_segments as
            select * from (values ('u1', 'never_started', timestamptz '2025-03-02'))
                t(user_id, segment, qualified_at)
            """
        )
    return path


def _settings(tmp_path: Path, env: str, environ: dict[str, str] | None = None) -> Settings:
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    variables = {"BIS_ENV": env, "BIS_DATA_DIR": str(data_dir), **(environ or {})}
    if env != "dev":
        variables["BIS_WAREHOUSE_URL"] = f"duckdb://{data_dir / 'warehouse.duckdb'}"
    return load_settings(variables)


def _report(settings: Settings, **kwargs) -> tuple[int, list[str]]:
    if settings.warehouse_path.exists():  # status reads the copy a run publishes
        publish_warehouse(settings)
    return status_report(settings, dagster_home=None, now=NOW, **kwargs)


def _levels(lines: list[str]) -> set[str]:
    return {line.split()[0] for line in lines}


def test_prod_missing_api_key_blocks_and_names_it(tmp_path: Path) -> None:
    environ = {k: v for k, v in PROD_ENV.items() if k != "SENDGRID_API_KEY"}
    code, lines = _report(_settings(tmp_path, "prod", environ))
    assert code == 1
    failing = [line for line in lines if line.startswith("FAIL")]
    assert any("SENDGRID_API_KEY" in line and "not set" in line for line in failing)
    assert not any("BIS_FROM_EMAIL" in line for line in failing if "needs" in line)


def test_prod_complete_config_never_prints_the_key(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "prod", PROD_ENV)
    _build_warehouse(settings.data_dir)
    code, lines = _report(settings)
    assert not any(SECRET in line for line in lines)
    assert any("SENDGRID_API_KEY=<redacted>" in line for line in lines)
    assert "FAIL" not in _levels(lines)
    assert code == 0


def test_secret_in_a_bad_variable_is_scrubbed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A broken BIS_EMAIL_SENDER is echoed in its error; pretend someone pasted the key there.
    for name, value in {**PROD_ENV, "BIS_ENV": "prod", "BIS_EMAIL_SENDER": SECRET}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("BIS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BIS_WAREHOUSE_URL", f"duckdb://{tmp_path / 'warehouse.duckdb'}")
    assert main(["status"]) == 1
    out = capsys.readouterr().out
    assert SECRET not in out
    assert out.startswith("FAIL config: BIS_EMAIL_SENDER=")


def test_dev_with_built_warehouse_is_ready(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "dev")
    _build_warehouse(settings.data_dir)
    code, lines = _report(settings)
    assert code == 0, "\n".join(lines)
    assert _levels(lines) <= {"OK", "WARN"}
    assert any(line.startswith("OK   migrations: current") for line in lines)
    # u1 is in the never_started segment: at least that audience renders with a real user.
    assert any(
        re.search(r"OK   templates: .*\([1-9]\d* of \d+ audiences sampled", line) for line in lines
    )
    assert any("dim_users has 2 users" in line for line in lines)
    assert lines[-1] == "OK   ready to send in dev"


def test_dev_without_warehouse_warns_but_is_not_blocked(tmp_path: Path) -> None:
    code, lines = _report(_settings(tmp_path, "dev"))
    assert code == 0
    assert any(line.startswith("WARN warehouse: warehouse not built yet") for line in lines)
    assert any(line.startswith("OK   templates:") and "synthetic" in line for line in lines)


def test_ledger_health_reports_stale_and_failures(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "dev")
    path = _build_warehouse(settings.data_dir)
    rows = [
        ("s1", "sent", None, NOW - timedelta(hours=1)),
        ("s2", "sending", None, NOW - timedelta(hours=2)),
        ("s3", "failed", "HTTP 400: bad address", NOW - timedelta(hours=3)),
        ("s4", "failed", "HTTP 400: bad address", NOW - timedelta(hours=4)),
        ("s5", "failed", "timeout", NOW - timedelta(days=3)),  # outside the 24 h window
    ]
    with open_warehouse(path) as con:
        for send_id, status, error, updated in rows:
            con.execute(
                """
                insert into messaging.sends (send_id, user_id, sequence_id, step_id, template,
                    enrollment_key, status, variant, flag_key, flag_state, flag_reason,
                    last_error, due_at, plan_id, planned_at, updated_at)
                values (?, 'u1', 'seq', 'step', 't', ?, ?, 'treatment', 'f', 'on', 'on', ?,
                        ?, 'p', ?, ?)
                """,
                [send_id, updated, status, error, updated, updated, updated],
            )
    code, lines = _report(settings)
    assert code == 0
    assert any(line.startswith("OK   ledger: failed 3") for line in lines)
    assert any(line.startswith("WARN ledger: 1 `sending` rows") for line in lines)
    assert any("2 failed in the last 24 h" in line for line in lines)
    assert any("2 x HTTP 400: bad address" in line for line in lines)
    assert not any("timeout" in line for line in lines)


def test_broken_template_blocks_sending(tmp_path: Path) -> None:
    sequences = tmp_path / "sequences"
    shutil.copytree(SEQUENCES_DIR, sequences)
    broken = sequences / "templates" / "lapsed" / "win_back.txt.j2"
    broken.write_text("{{ user.steps_completed / 0 }}\n", encoding="utf-8")
    paths = StatusPaths(sequences=sequences, templates=sequences / "templates")
    code, lines = _report(_settings(tmp_path, "dev"), paths=paths)
    assert code == 1
    assert any(line.startswith("FAIL") and "lapsed/win_back" in line for line in lines)


def test_newer_warehouse_than_code_blocks(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "dev")
    path = _build_warehouse(settings.data_dir)
    with open_warehouse(path) as con:
        con.execute("insert into messaging.schema_migrations (version, name) values (999, 'x')")
    code, lines = _report(settings)
    assert code == 1
    assert any(line.startswith("FAIL migrations:") and "999" in line for line in lines)


@pytest.mark.parametrize("make_home", [False, True])
def test_dagster_home_without_instance(tmp_path: Path, make_home: bool) -> None:
    home = tmp_path / "dagster_home"
    if make_home:
        home.mkdir()
    code, lines = status_report(_settings(tmp_path, "dev"), dagster_home=home, now=NOW)
    assert code == 0
    assert any(line.startswith("WARN runs: no Dagster instance") for line in lines)


def test_status_finds_the_projects_dagster_instance_without_an_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make ui` keeps the instance in the project's .dagster_home; `bis status` run from a
    shell without DAGSTER_HOME exported still finds it (and says nothing is wrong if absent)."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    settings = load_settings({"BIS_DATA_DIR": str(tmp_path)})
    assert settings.dagster_home == DEFAULT_DAGSTER_HOME
    _, lines = status_report(settings, dagster_home=settings.dagster_home, now=NOW)
    runs = [line for line in lines if " runs: " in line]
    assert runs and str(DEFAULT_DAGSTER_HOME) in runs[0] and not runs[0].startswith("FAIL")
