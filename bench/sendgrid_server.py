"""The local SendGrid-compatible server for the send benchmark, in a process of its own.

It is the test suite's FakeSendGrid (tests/support/fake_sendgrid.py: auth, payload validation,
202 + X-Message-Id), except that it counts what it accepts instead of keeping every request in
memory (a 100k-message run would otherwise hold every body). Running it in its own process
keeps its CPU and memory out of the measured stage.

    python -m bench.sendgrid_server    # prints the URL and the API key as one JSON line
"""

from __future__ import annotations

import json
import signal
import sys
import threading

from tests.support.fake_sendgrid import FakeSendGrid, RecordedRequest


class CountingSendGrid(FakeSendGrid):
    def __init__(self) -> None:
        super().__init__()
        self.accepted_messages = 0

    def _received(self, request: RecordedRequest) -> None:
        pass  # nothing kept

    def _record(self, request: RecordedRequest, *, accepted: bool, handled: bool) -> None:
        with self._lock:
            if accepted:
                self.accepted_messages += len(request.send_ids)
            if handled:
                self._handled += 1


def main() -> None:
    server = CountingSendGrid().start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(json.dumps({"url": server.url, "api_key": server.api_key}), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        print(json.dumps({"accepted_messages": server.accepted_messages}), file=sys.stderr)


if __name__ == "__main__":
    main()
