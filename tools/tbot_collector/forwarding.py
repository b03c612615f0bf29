"""Forwarding stored events to a PostHog project of your own, in batches (the SDK's).

An event reaches the forwarder only once it is in the JSONL file and its
client has been answered, so a slow or unreachable PostHog never delays a
reporting client and never loses an event: the file is the record, PostHog a
copy. The SDK queues events and a consumer thread sends them as one ``/batch/``
request per ``flush_interval`` (or per BATCH_SIZE events), retrying a failed
batch with backoff; ``close()`` sends what is queued, bounded in time.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from tbot_collector.console import Lines
from tbot_collector.events import show

API_KEY_ENV = "POSTHOG_API_KEY"
FLUSH_INTERVAL = 2.0  # seconds an event waits at most for its batch to go out
BATCH_SIZE = 100  # events per request at most (the SDK's flush_at)
QUEUE_MAX = 10_000
TIMEOUT = 5.0  # per request
RETRIES = 2  # per batch, after 1 s then 2 s (the SDK's backoff)
DRAIN_SECONDS = 10.0  # how long close() waits for the last batches
_IDS_SHOWN = 10

# PostHog deduplicates on the event uuid: one derived from the event itself
# makes a client's retry of the same start count once there.
_UUID_NAMESPACE = uuid.UUID("9f4c3c52-4d0e-4a55-9d3e-3f0b6b1f6a10")

# The SDK adds this host's OS and Python; they would pass for the runner's.
_KEEP_SDK_PROPERTIES = ("$lib", "$lib_version", "$geoip_disable")


class CollectorError(Exception):
    """A configuration problem the command line reports as a usage error."""


def event_uuid(record: dict[str, Any]) -> str:
    key = f"{record['event']}:{record['distinct_id']}:{record['timestamp']}"
    return str(uuid.uuid5(_UUID_NAMESPACE, key))


def only_tbot_properties(msg: dict[str, Any]) -> dict[str, Any]:
    props = msg.get("properties") or {}
    msg["properties"] = {
        k: v for k, v in props.items() if k.startswith("tbot.") or k in _KEEP_SDK_PROPERTIES
    }
    return msg


class Forwarder:
    def __init__(
        self, host: str, api_key: str, lines: Lines, *, flush_interval: float = FLUSH_INTERVAL
    ) -> None:
        if not api_key.strip():
            raise CollectorError(f"--posthog-host needs the project API key in {API_KEY_ENV}")
        try:
            from posthog import Posthog  # noqa: PLC0415  (only an opted-in run needs the SDK)
            from posthog.consumer import Consumer  # noqa: PLC0415
        except ImportError as exc:
            raise CollectorError(
                f"--posthog-host needs the posthog package ({exc}); "
                "run the collector with `python3 scripts/dev collector`"
            ) from exc
        self.host = host
        self._lines = lines
        self._consumer_type: type = Consumer
        self._lock = threading.Lock()
        self._queued = 0  # taken by the SDK's queue
        self._refused = 0  # not taken (queue full, SDK error)
        self._batch_failed = 0  # in a batch that failed for good
        self._closed = False
        self._captured = threading.local()
        self._client: Any = Posthog(
            project_api_key=api_key.strip(),
            host=host,
            flush_at=BATCH_SIZE,
            flush_interval=flush_interval,
            max_queue_size=QUEUE_MAX,
            max_retries=RETRIES,
            timeout=TIMEOUT,
            on_error=self._on_error,
            capture_mode="v0",  # /batch/, like prehog's posthog-go; not left to env
            gzip=False,
            disable_geoip=True,
            before_send=only_tbot_properties,
        )
        self._log = logging.getLogger("posthog")
        self._handler = _SdkLogHandler(self)
        self._propagate = self._log.propagate
        self._log.addHandler(self._handler)
        # The SDK logs with tracebacks; a failure here is one line of ours.
        self._log.propagate = False

    # -- the work

    def submit(self, record: dict[str, Any], when: datetime) -> None:
        """Queue one stored event (never blocks on the network)."""
        with self._lock:
            if self._closed:
                return
        with self._capturing() as sdk_lines:
            try:
                queued = self._client.capture(
                    record["event"],
                    distinct_id=record["distinct_id"],
                    properties=dict(record["properties"]),
                    timestamp=when,
                    uuid=event_uuid(record),
                )
            except Exception as exc:  # the SDK should not raise; never fail a request over it
                queued = None
                sdk_lines.append(f"{type(exc).__name__}: {exc}")
        with self._lock:
            if queued is not None:
                self._queued += 1
                return
            self._refused += 1
        why = sdk_lines[-1] if sdk_lines else "the SDK did not take it"
        self._lines.err(
            f"collector: not forwarding {show(record['distinct_id'])} to PostHog "
            f"(the event is in the JSONL file): {why}"
        )

    def _on_error(self, exc: Exception, batch: list[dict[str, Any]]) -> None:
        # Called by the SDK's consumer thread once a batch has failed for good.
        with self._lock:
            self._batch_failed += len(batch)
        ids = [show(msg.get("distinct_id", "?")) for msg in batch]
        if len(ids) == 1:
            what, where = ids[0], "the event is"
        else:
            more = f", and {len(ids) - _IDS_SHOWN} more" if len(ids) > _IDS_SHOWN else ""
            what = f"{len(ids)} events ({', '.join(ids[:_IDS_SHOWN])}{more})"
            where = "they are"
        self._lines.err(
            f"collector: forwarding {what} to PostHog at {self.host} failed "
            f"({where} in the JSONL file): {type(exc).__name__}: {exc}"
        )

    # -- status

    def counts(self) -> tuple[int, int, int]:
        """(sent, failed, pending): sent means PostHog accepted the batch."""
        pending = int(self._client.queue.unfinished_tasks)
        with self._lock:
            queued, batch_failed, refused = self._queued, self._batch_failed, self._refused
        # A failed batch is counted by on_error just before the SDK marks it
        # done: never report it twice in that instant.
        sent = max(0, queued - pending - batch_failed)
        return sent, batch_failed + refused, max(0, min(pending, queued - batch_failed))

    def wait_settled(self, count: int, timeout: float) -> bool:
        """Wait (bounded) until ``count`` events were sent or given up on."""
        deadline = time.monotonic() + timeout
        while True:
            sent, failed, _ = self.counts()
            if sent + failed >= count:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def close(self, timeout: float | None = None) -> None:
        """Send what is queued now (bounded by ``timeout``, DRAIN_SECONDS), then release the SDK."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        timeout = DRAIN_SECONDS if timeout is None else timeout
        _, _, queued = self.counts()
        if queued:
            self._lines.out(
                f"collector: sending {queued} queued event(s) to PostHog (at most {timeout:g} s)"
            )
        with self._capturing():
            self._client.flush(timeout_seconds=timeout)
        _, _, pending = self.counts()
        if pending:
            # shutdown() would wait for them without a bound: leave the
            # daemon consumer to the process's exit, and its messages unsaid
            # (the SDK's exit hook would repeat this line, with a traceback).
            self._lines.err(
                f"collector: stopped forwarding with {pending} event(s) not confirmed "
                "by PostHog (they are in the JSONL file)"
            )
            return
        with self._capturing(), contextlib.suppress(Exception):
            self._client.shutdown()
        self._log.removeHandler(self._handler)
        self._log.propagate = self._propagate

    # -- the SDK's own log

    @contextlib.contextmanager
    def _capturing(self) -> Iterator[list[str]]:
        """Keep the SDK's messages from this thread for our own line, instead of printing them."""
        self._captured.lines = []
        try:
            yield self._captured.lines
        finally:
            self._captured.lines = None

    def sdk_log(self, message: str) -> None:
        captured = getattr(self._captured, "lines", None)
        if captured is not None:
            captured.append(message)
        elif self._closed:
            return
        elif isinstance(threading.current_thread(), self._consumer_type):
            return  # a failed batch: _on_error says it, with the events' ids
        else:
            self._lines.err(f"collector: posthog: {message}")


class _SdkLogHandler(logging.Handler):
    def __init__(self, forwarder: Forwarder) -> None:
        super().__init__(logging.WARNING)
        self._forwarder = forwarder

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self._forwarder.sdk_log(record.getMessage())
