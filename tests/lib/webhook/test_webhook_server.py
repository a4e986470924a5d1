"""The receiver as a real process: uvicorn on 127.0.0.1, posted to over HTTP, killed mid-write.

The crash test is the durability guarantee itself: the server dies after writing the temp
file but before the rename, so the client sees no 2xx, ingestion sees no file, and the
retried POST (what SendGrid does) lands once the server is back.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pipelines.lib.webhook import EVENTS_PATH, serve
from tests.lib.webhook.webhook_helpers import (
    SIGNER,
    final_files,
    landed_files,
    read_lines,
    sample_events,
)

REPO_ROOT = Path(__file__).resolve().parents[3]

# A server process: through `serve` (the production path), or through `create_app` with a
# before-commit hook that kills the process when CRASH_BEFORE_RENAME is set.
SERVER_SCRIPT = """
import os, sys
from pathlib import Path
port, landing, key = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
# An optional 4th argument sets both request read deadlines (seconds).
deadlines = {}
if len(sys.argv) > 4:
    deadlines = {"header_timeout": float(sys.argv[4]), "body_timeout": float(sys.argv[4])}
if os.environ.get("CRASH_BEFORE_RENAME"):
    import uvicorn
    from pipelines.lib.webhook import create_app

    def die(temp):
        # Flush nothing, run no handlers: as abrupt as SIGKILL, at the worst moment.
        os._exit(1)

    app = create_app(landing_dir=landing, public_key=key, before_commit=die)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
else:
    from pipelines.lib.webhook import serve
    serve("127.0.0.1", port, env="prod", landing_dir=landing, public_key=key, **deadlines)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def server(
    landing: Path, *, crash: bool = False, deadline: float | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("CRASH_BEFORE_RENAME", None)
    if crash:
        env["CRASH_BEFORE_RENAME"] = "1"
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER_SCRIPT, str(port), str(landing), SIGNER.public_key]
        + ([str(deadline)] if deadline is not None else []),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"server exited early ({process.returncode}):\n{output}")
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=1) as response:
                    assert json.loads(response.read()) == {"status": "ok"}
                    break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    pytest.fail("server did not come up within 20 s")
                time.sleep(0.05)
        yield url, process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout:
            process.stdout.close()


def post(url: str, body: bytes, headers: dict[str, str]) -> int | None:
    """The HTTP status, or None when the connection died without an answer."""
    request = urllib.request.Request(url + EVENTS_PATH, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, ConnectionError, OSError):
        return None


def test_real_server_verifies_and_stores(tmp_path: Path) -> None:
    landing = tmp_path / "email_events"
    events = sample_events(3)
    body = json.dumps(events).encode()

    with server(landing) as (url, _):
        assert post(url, body, SIGNER.headers(body)) == 200
        forged = {**SIGNER.headers(body), "X-Twilio-Email-Event-Webhook-Signature": "AAAA"}
        assert post(url, body, forged) == 403
        assert post(url, body, {"Content-Type": "application/json"}) == 401
        stale = SIGNER.headers(body, int(time.time()) - 3600)
        assert post(url, body, stale) == 403
        big = b"[" + b" " * (6 * 1024 * 1024) + b"]"
        assert post(url, big, SIGNER.headers(big)) in (413, None)  # may reset after 413

    [stored] = final_files(landing)
    assert read_lines(stored) == [json.dumps(event) for event in events]
    assert landed_files(landing) == [stored]


def test_killed_between_receiving_and_answering_loses_nothing_acknowledged(
    tmp_path: Path,
) -> None:
    landing = tmp_path / "email_events"
    events = sample_events(4, prefix="crash")
    body = json.dumps(events).encode()
    headers = SIGNER.headers(body)  # SendGrid retries with the same signed delivery

    with server(landing, crash=True) as (url, process):
        status = post(url, body, headers)
        process.wait(timeout=10)

    assert status is None  # no answer at all, so certainly no 2xx
    assert process.returncode == 1  # it died in the hook, not of something else
    assert final_files(landing) == []  # nothing ingestion would read...
    [leftover] = landed_files(landing)  # ...only the temp file it ignores
    assert leftover.name.startswith(".") and leftover.name.endswith(".tmp")

    acknowledged: list[bytes] = []
    with server(landing) as (url, _):
        assert post(url, body, headers) == 200  # the retry lands
        acknowledged.append(body)
        for i in range(5):  # and new deliveries keep working after the restart
            more = json.dumps(sample_events(2, prefix=f"after-{i}")).encode()
            if post(url, more, SIGNER.headers(more)) == 200:
                acknowledged.append(more)

    # Acknowledged implies durable: every 200 has exactly its own file with its events.
    stored = sorted(tuple(read_lines(path)) for path in final_files(landing))
    expected = sorted(tuple(json.dumps(e) for e in json.loads(b)) for b in acknowledged)
    assert len(acknowledged) == 6
    assert stored == expected


@pytest.mark.parametrize("env", ["staging", "prod"])
@pytest.mark.parametrize("key", [None, "", "   "])
def test_serve_refuses_staging_and_prod_without_key_before_binding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str, key: str | None
) -> None:
    import uvicorn

    def must_not_run(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("uvicorn.run was called: the server would have bound")

    monkeypatch.setattr(uvicorn, "run", must_not_run)
    with pytest.raises(ValueError, match="SENDGRID_WEBHOOK_PUBLIC_KEY"):
        serve("127.0.0.1", free_port(), env=env, landing_dir=tmp_path, public_key=key)


def test_serve_refuses_a_malformed_key_and_an_unknown_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("bound anyway"))
    with pytest.raises(ValueError, match="base64 DER"):
        serve("127.0.0.1", 1, env="prod", landing_dir=tmp_path, public_key="garbage")
    with pytest.raises(ValueError, match="BIS_ENV"):
        serve("127.0.0.1", 1, env="production", landing_dir=tmp_path, public_key=None)


def test_serve_in_dev_without_key_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    calls: list[tuple[object, ...]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    serve("127.0.0.1", 8025, env="dev", landing_dir=tmp_path / "l", public_key=None)
    [(_, options)] = calls
    assert options["host"] == "127.0.0.1" and options["port"] == 8025
