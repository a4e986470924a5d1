"""Render the dashboard in headless Chromium with no network: charts draw, no JS errors.

Skipped when Chromium is not installed, unless BIS_REQUIRE_BROWSER=1 (then it fails).
The screenshot goes to $BIS_DATA_DIR/reports/dashboard.png.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines.lib.reporting import build_dashboard
from tests.lib.reporting.test_reporting_dashboard import _add_marts

CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")


def _chromium() -> str:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("BIS_REQUIRE_BROWSER") == "1":
        pytest.fail("BIS_REQUIRE_BROWSER=1 but Chromium is not installed")
    pytest.skip("Chromium is not installed (make test-browser installs it)")


def _run(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    command = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
        # No network: every host name fails to resolve.
        "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=10000",
        "--window-size=1400,3000", *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _console_errors(stderr: str) -> list[str]:
    return [
        line
        for line in stderr.splitlines()
        if "CONSOLE" in line or "Uncaught" in line or "ERR_NAME_NOT_RESOLVED" in line
    ]


def test_dashboard_renders_offline_without_errors(warehouse, data_dir: Path, tmp_path) -> None:
    browser = _chromium()
    _add_marts(warehouse)
    out = data_dir / "reports" / "dashboard.html"
    result = build_dashboard(warehouse, env="dev", out_path=out,
                             as_of=datetime(2026, 3, 10, 12, tzinfo=UTC))  # fmt: skip
    url = out.resolve().as_uri()

    dom = _run(browser, tmp_path / "profile-dom", "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<h2>Headline KPIs</h2>" in dom.stdout
    html_tag = re.search(r"<html[^>]*>", dom.stdout)
    assert html_tag and "data-js-errors" not in html_tag.group(0), "the page logged JS errors"
    assert _console_errors(dom.stderr) == []
    # plotly draws each chart into an <svg class="main-svg">: every chart rendered.
    drawn = re.findall(r'<div[^>]*class="[^"]*js-plotly-plot', dom.stdout)
    assert len(drawn) == result.charts
    assert dom.stdout.count('class="main-svg"') >= result.charts

    screenshot = data_dir / "reports" / "dashboard.png"
    shot = _run(browser, tmp_path / "profile-shot", f"--screenshot={screenshot}", url)
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert _console_errors(shot.stderr) == []
    assert screenshot.stat().st_size > 10_000
