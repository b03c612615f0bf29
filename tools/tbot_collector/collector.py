"""The collector: the HTTP server, the JSONL store and the optional PostHog forwarder together."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from tbot_collector import events
from tbot_collector.codec import METHOD_PATH, ConnectError
from tbot_collector.console import Lines
from tbot_collector.forwarding import FLUSH_INTERVAL, CollectorError, Forwarder
from tbot_collector.server import HTTPServer
from tbot_collector.storage import DEFAULT_OUTPUT, Store, StoreClosed
from teleport_auth._proto.prehog.v1alpha.tbot_pb2 import SubmitTbotEventRequest

__all__ = ["Collector", "CollectorError", "serve"]

STOP_GRACE_SECONDS = 5.0  # for requests being stored when stop() is called


class Collector:
    """The server, its JSONL store and the optional PostHog forwarder.

    Binds (port 0 picks a free port) and opens the output on construction;
    ``start()`` serves from a background thread; ``stop()`` stops accepting,
    lets events being stored finish, sends what is queued for PostHog and
    closes. Usable as a context manager (started on enter, stopped on exit).
    """

    def __init__(
        self,
        output: str | os.PathLike[str] = DEFAULT_OUTPUT,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        posthog_host: str | None = None,
        posthog_api_key: str | None = None,
        posthog_flush_interval: float = FLUSH_INTERVAL,
        quiet: bool = False,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.lines = Lines(stdout, stderr)
        self.quiet = quiet
        self.output = Path(output).absolute()
        self.events = 0
        self._count_lock = threading.Condition()
        self._busy = 0
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._forwarder: Forwarder | None = None
        if posthog_host is not None:  # first: a usage error opens nothing
            self._forwarder = Forwarder(
                posthog_host,
                posthog_api_key or "",
                self.lines,
                flush_interval=posthog_flush_interval,
            )
        try:
            self._server = HTTPServer((host, port), self)
        except OSError as exc:
            self._close_forwarder()
            raise OSError(
                exc.errno, f"cannot listen on {host}:{port}: {exc.strerror or exc}"
            ) from exc
        try:
            self._store = Store(self.output)
        except OSError as exc:
            self._server.server_close()
            self._close_forwarder()
            raise OSError(exc.errno, f"cannot open {self.output}: {exc.strerror or exc}") from exc

    # -- addresses

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def endpoint(self) -> str:
        """The full URL of SubmitTbotEvent."""
        return self.url + METHOD_PATH

    # -- lifecycle

    def start(self) -> Collector:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.1},
                name="tbot-collector",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; events already stored are then sent to PostHog (bounded)."""
        if self._stopped:
            return
        self._stopped = True
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
        with self._count_lock:
            self._count_lock.wait_for(lambda: self._busy == 0, STOP_GRACE_SECONDS)
        self._server.server_close()
        self._store.close()
        self._close_forwarder()

    def _close_forwarder(self) -> None:
        if self._forwarder is not None:
            self._forwarder.close()

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- forwarding status (tests, the command line's last line)

    @property
    def forwarding(self) -> bool:
        return self._forwarder is not None

    @property
    def forwarded(self) -> int:
        """Events PostHog accepted."""
        return self._forwarder.counts()[0] if self._forwarder else 0

    @property
    def forward_failures(self) -> int:
        """Events not forwarded: their batch failed for good, or the queue was full."""
        return self._forwarder.counts()[1] if self._forwarder else 0

    @property
    def forward_pending(self) -> int:
        """Events queued or in flight to PostHog."""
        return self._forwarder.counts()[2] if self._forwarder else 0

    def wait_forwarded(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` events were forwarded or given up on (bounded)."""
        if self._forwarder is None:
            return count <= 0
        return self._forwarder.wait_settled(count, timeout)

    # -- the work

    @contextlib.contextmanager
    def _working(self) -> Iterator[None]:
        with self._count_lock:
            self._busy += 1
        try:
            yield
        finally:
            with self._count_lock:
                self._busy -= 1
                self._count_lock.notify_all()

    def accept(
        self, req: SubmitTbotEventRequest, received_at: datetime, answer: Callable[[], None]
    ) -> None:
        """Store the event (fsync'ed), then answer 200, then print and forward it."""
        try:
            record = events.to_posthog(req, received_at)
            when = events.event_time(req, received_at)
        except ValueError as exc:
            raise ConnectError("invalid_argument", f"invalid timestamp: {exc}") from exc
        with self._working():
            try:
                self._store.append(record)
            except StoreClosed as exc:
                raise ConnectError("unavailable", "the collector is shutting down") from exc
            with self._count_lock:
                self.events += 1
            # Stored is stored: a client gone before its answer changes nothing.
            with contextlib.suppress(OSError):
                answer()
            if not self.quiet:
                self.lines.out(events.describe(record))
            if self._forwarder is not None:
                self._forwarder.submit(record, when)


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    output: str | os.PathLike[str] = DEFAULT_OUTPUT,
    **kwargs: Any,
) -> Collector:
    """Start a collector in a background thread; call ``.stop()`` when done."""
    return Collector(output, host, port, **kwargs).start()
