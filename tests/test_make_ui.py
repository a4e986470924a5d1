"""`make ui` serves the Dagster UI, and its GraphQL API lists our assets, checks, sensors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.defs.test_definitions import EXPECTED_ASSETS, EXPECTED_JOBS, EXPECTED_SENSORS

ROOT = Path(__file__).resolve().parents[1]
QUERY = """
{ repositoriesOrError { ... on RepositoryConnection { nodes {
    sensors { name } jobs { name }
    assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks { checks { name } } } }
} } } }
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(port: int) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": QUERY}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


@pytest.mark.slow
def test_make_ui_serves_the_webserver(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "BIS_DATA_DIR": str(tmp_path / "data"),
        "UI_PORT": str(port),
    }
    log = (tmp_path / "ui.log").open("w")
    process = subprocess.Popen(
        ["make", "ui"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        info = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/server_info", timeout=5
                ) as response:
                    info = json.load(response)
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(1)
        assert info is not None, (tmp_path / "ui.log").read_text()[-3000:]
        assert "dagster_webserver_version" in info

        [repository] = _graphql(port)["data"]["repositoriesOrError"]["nodes"]
        assets = {"/".join(n["assetKey"]["path"]) for n in repository["assetNodes"]}
        checks = {
            c["name"]
            for n in repository["assetNodes"]
            for c in n["assetChecksOrError"].get("checks", [])
        }
        assert EXPECTED_ASSETS <= assets
        assert {"ingested_files_counts_add_up", "raw_events_unique_event_id"} <= checks
        assert EXPECTED_SENSORS <= {s["name"] for s in repository["sensors"]}
        assert EXPECTED_JOBS <= {j["name"] for j in repository["jobs"]}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
