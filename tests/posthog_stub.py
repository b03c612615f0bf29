"""A local stand-in for PostHog's ingestion endpoints, recording what it receives.

It accepts the legacy capture endpoints the Python SDK (capture mode v0, the
default) and other SDKs post to: ``/batch/`` (what ``Posthog.capture`` uses,
JSON ``{"api_key", "batch": [event, ...], "sent_at", ...}``), ``/capture/``,
``/e/``, ``/i/v0/e/`` (a single event or a batch). Bodies may be gzipped
(``Content-Encoding: gzip``, as the SDK does with ``gzip=True``).

Each request is one ``Received`` (a batch holds several events). ``statuses``
answers the first requests (e.g. ``[503]`` fails the first one only), then
``status`` answers the rest.

Listens on 127.0.0.1, port 0. Stop it with ``stop()`` or use it as a context
manager; it also stops itself after ``lifetime`` seconds so a test that forgets
it cannot hang the run.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATHS = ("/batch/", "/capture/", "/e/", "/i/v0/e/")


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def api_key(self) -> str | None:
        key = self.body.get("api_key")
        if key is None and self.events:
            key = self.events[0].get("api_key")
        return None if key is None else str(key)

    @property
    def events(self) -> list[dict[str, Any]]:
        batch = self.body.get("batch")
        if isinstance(batch, list):
            return [e for e in batch if isinstance(e, dict)]
        return [self.body]


class PostHogStub:
    def __init__(
        self, *, status: int = 200, statuses: Sequence[int] = (), lifetime: float = 60.0
    ) -> None:
        self.status = status  # the answer to every capture request (e.g. 503 to fail)
        self._first = list(statuses)  # ...but these answer the first ones, in order
        self.received: list[Received] = []
        self._cond = threading.Condition()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                path = self.path.split("?", 1)[0]
                if path not in PATHS:
                    self._reply(404, {"detail": f"no such endpoint {path}"})
                    return
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip" or "compression=gzip" in (
                    self.path
                ):
                    raw = gzip.decompress(raw)
                try:
                    body = json.loads(raw)
                except ValueError:
                    self._reply(400, {"detail": "invalid JSON"})
                    return
                status = stub._record(Received(path, dict(self.headers.items()), body))
                self._reply(status, {"status": 1} if status == 200 else {"detail": "x"})

            def _reply(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._timer = threading.Timer(lifetime, self.stop)
        self._timer.daemon = True
        self._stopped = False
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> PostHogStub:
        self._thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._timer.cancel()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> PostHogStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _record(self, item: Received) -> int:
        """Keep ``item``; the status to answer it with."""
        with self._cond:
            self.received.append(item)
            self._cond.notify_all()
            return self._first.pop(0) if self._first else self.status

    def events(self) -> list[dict[str, Any]]:
        with self._cond:
            return [e for r in self.received for e in r.events]

    def wait_events(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The events received once there are at least ``count`` (or after timeout)."""
        with self._cond:
            self._cond.wait_for(lambda: sum(len(r.events) for r in self.received) >= count, timeout)
        return self.events()
