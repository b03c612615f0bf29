"""A small prehog-compatible collector for tbot's anonymous telemetry.

``python -m teleport_auth.collector`` serves
``prehog.v1alpha.TbotReportingService/SubmitTbotEvent`` over the Connect
protocol (unary, binary or JSON codec), appends every accepted event to a JSONL
file in PostHog's capture shape and can forward it to a PostHog project of your
own. It is meant for local runs (``act``), the demo, privacy audits, and teams
that keep the data themselves: point ``TELEPORT_ANONYMOUS_TELEMETRY_ADDRESS``
at it.

Protocol choices (the Connect spec leaves some of them open):

* unknown procedure: 404 with code ``unimplemented`` (what a Connect client
  derives from a bare 404 anyway);
* any method but POST: 405, ``Allow: POST``, code ``unimplemented``
  (connect-go answers 405 too, the method is not idempotent so GET is not
  offered);
* a content type other than ``application/proto`` / ``application/json``: 415
  with ``Accept-Post`` and code ``unimplemented`` (the server does not
  implement that codec; connect-go sends 415 with no body, we add the JSON
  error so every answer has the same shape);
* ``Content-Encoding`` other than identity/gzip: 501 ``unimplemented`` with
  ``Accept-Encoding`` (as the spec asks for unknown compression);
* a body over 64 KiB (declared, chunked or after gunzip): 429
  ``resource_exhausted``, answered without reading the rest into memory;
* a ``Connect-Protocol-Version`` other than ``1``: 400 ``invalid_argument``;
  a missing one is tolerated;
* no ``start`` event, an empty ``distinct_id`` or an out-of-range timestamp:
  400 ``invalid_argument`` (such an event cannot be stored meaningfully).

Only the standard library and protobuf are needed; the ``posthog`` SDK is
imported only when forwarding is asked for.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import signal
import socket
import socketserver
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any, TextIO
from urllib.parse import urlsplit

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from teleport_auth._proto.prehog.v1alpha.tbot_pb2 import (
    SubmitTbotEventRequest,
    TbotStartEvent,
)
from teleport_auth.telemetry import METHOD_PATH

EVENT_NAME = "tbot.start"
DEFAULT_OUTPUT = "tbot-events.jsonl"
API_KEY_ENV = "POSTHOG_API_KEY"
MAX_BODY = 64 * 1024

PROTO = "application/proto"
JSON = "application/json"

RUN_MODES = {
    TbotStartEvent.RUN_MODE_UNSPECIFIED: "unspecified",
    TbotStartEvent.RUN_MODE_ONE_SHOT: "one-shot",
    TbotStartEvent.RUN_MODE_DAEMON: "daemon",
}

# Connect code -> HTTP status (Connect protocol reference, "Error Codes").
CODE_STATUS = {
    "canceled": 499,
    "unknown": 500,
    "invalid_argument": 400,
    "deadline_exceeded": 504,
    "not_found": 404,
    "already_exists": 409,
    "permission_denied": 403,
    "resource_exhausted": 429,
    "failed_precondition": 400,
    "aborted": 409,
    "out_of_range": 400,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
    "data_loss": 500,
    "unauthenticated": 401,
}

# Bounds that keep a misbehaving client from pinning a thread or the shutdown.
SOCKET_TIMEOUT = 10.0
LINGER_SECONDS = 1.0
LINGER_BYTES = 1024 * 1024
STOP_GRACE_SECONDS = 5.0
FORWARD_TIMEOUT = 5.0
FORWARD_DRAIN_SECONDS = 10.0
FORWARD_QUEUE_MAX = 1000

# PostHog deduplicates on the event uuid: one derived from the event itself
# makes a client's retry of the same start count once there.
_UUID_NAMESPACE = uuid.UUID("9f4c3c52-4d0e-4a55-9d3e-3f0b6b1f6a10")


class CollectorError(Exception):
    """A configuration problem the CLI reports as a usage error."""


class ConnectError(Exception):
    """An error answered as a Connect JSON error body."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else CODE_STATUS[code]
        self.headers = headers or {}


class _ClientGone(Exception):
    """The client stalled or hung up mid-request: there is nobody to answer."""


# ---------------------------------------------------------------------------
# The mapping prehog does: request -> PostHog capture event.


def _rfc3339(ts: Timestamp) -> str:
    return ts.ToJsonString()  # UTC, "Z", 0/3/6/9 fraction digits


def event_time(req: SubmitTbotEventRequest, received_at: datetime) -> datetime:
    """The event's own timestamp (UTC), or the time it was received when unset."""
    if req.HasField("timestamp"):
        req.timestamp.ToJsonString()  # raises ValueError when out of range
        return req.timestamp.ToDatetime(tzinfo=timezone.utc)
    return received_at.astimezone(timezone.utc)


def to_posthog(req: SubmitTbotEventRequest, received_at: datetime) -> dict[str, Any]:
    """The PostHog capture event prehog makes of a SubmitTbotEventRequest.

    Raises ValueError for a timestamp outside the RFC 3339 range.
    """
    if req.HasField("timestamp"):
        timestamp = _rfc3339(req.timestamp)
    else:
        ts = Timestamp()
        ts.FromDatetime(received_at.astimezone(timezone.utc))
        timestamp = _rfc3339(ts)
    start = req.start
    props: dict[str, Any] = {
        "tbot.run_mode": RUN_MODES.get(start.run_mode, "unknown"),
        "tbot.version": start.version,
        "tbot.join_type": start.join_type,
    }
    # prehog only sets the helper properties when a helper is named.
    if start.helper:
        props["tbot.helper"] = start.helper
    if start.helper_version:
        props["tbot.helper_version"] = start.helper_version
    props.update(
        {
            "tbot.destinations_other": int(start.destinations_other),
            "tbot.destinations_database": int(start.destinations_database),
            "tbot.destinations_kubernetes": int(start.destinations_kubernetes),
            "tbot.destinations_application": int(start.destinations_application),
        }
    )
    return {
        "event": EVENT_NAME,
        "distinct_id": req.distinct_id,
        "timestamp": timestamp,
        "properties": props,
    }


def _show(value: Any) -> str:
    text = str(value)
    # Quote anything that could break the one-line, space-separated format.
    if text and text.isprintable() and " " not in text:
        return text
    return json.dumps(text)


def describe(record: dict[str, Any]) -> str:
    """One readable line for a stored event."""
    p = record["properties"]
    helper = p.get("tbot.helper", "")
    if helper and p.get("tbot.helper_version"):
        helper = f"{helper}@{p['tbot.helper_version']}"
    return (
        f"{record['event']} distinct_id={_show(record['distinct_id'])}"
        f" version={_show(p['tbot.version'])} run_mode={_show(p['tbot.run_mode'])}"
        f" join={_show(p['tbot.join_type'])} helper={_show(helper) if helper else '-'}"
        f" destinations=other:{p['tbot.destinations_other']}"
        f",db:{p['tbot.destinations_database']}"
        f",kube:{p['tbot.destinations_kubernetes']}"
        f",app:{p['tbot.destinations_application']}"
    )


# ---------------------------------------------------------------------------
# Output


class _Lines:
    """Whole lines to stdout/stderr from many threads; a broken stdout never fails a request."""

    def __init__(self, out: TextIO | None, err: TextIO | None) -> None:
        self._out = out
        self._err = err
        self._lock = threading.Lock()

    def _write(self, stream: TextIO, line: str) -> None:
        with self._lock:
            try:
                try:
                    stream.write(line + "\n")
                except UnicodeEncodeError:
                    enc = stream.encoding or "ascii"
                    stream.write(line.encode(enc, "replace").decode(enc) + "\n")
                stream.flush()
            except (OSError, ValueError):
                pass

    def out(self, line: str) -> None:
        self._write(self._out or sys.stdout, line)

    def err(self, line: str) -> None:
        self._write(self._err or sys.stderr, " ".join(line.split()))


class _Store:
    """The JSONL file: one line per event, on disk (fsync) before the 200 goes out."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        existed = path.exists()
        # O_APPEND and one write() per line: concurrent appends and a kill
        # between events never leave a torn line behind.
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if not existed:
            self._sync_dir()

    def _sync_dir(self) -> None:
        # The new file's directory entry must survive a crash as well.
        with contextlib.suppress(OSError):
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def append(self, record: dict[str, Any]) -> None:
        data = (json.dumps(record) + "\n").encode()
        with self._lock:
            if self._fd is None:
                raise ConnectError("unavailable", "the collector is shutting down")
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            os.fsync(self._fd)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None


# ---------------------------------------------------------------------------
# PostHog forwarding


@dataclass
class _Pending:
    record: dict[str, Any]
    when: datetime


@dataclass
class _ForwardStats:
    sent: int = 0
    failed: int = 0
    cond: threading.Condition = field(default_factory=threading.Condition)


class _Forwarder:
    """Sends stored events to PostHog from one worker thread, after the Connect answer.

    The SDK runs in sync_mode: each event is one HTTP request whose outcome we
    see, with no SDK queue or threads that a kill would lose silently. The
    worker runs it after the 200 so a slow PostHog never delays (or makes
    retry) the reporting client; the JSONL line already exists by then.
    """

    def __init__(self, host: str, api_key: str, lines: _Lines) -> None:
        try:
            from posthog import Posthog  # noqa: PLC0415  (only an opted-in run needs the SDK)
        except ImportError as exc:
            raise CollectorError(
                f"--posthog-host needs the posthog package ({exc}); pip install posthog"
            ) from exc
        self.host = host
        self._lines = lines
        self.stats = _ForwardStats()
        self._queue: list[_Pending | None] = []
        self._qcond = threading.Condition()
        self._sdk_errors: list[str] = []
        self._client: Any = Posthog(
            project_api_key=api_key,
            host=host,
            sync_mode=True,
            timeout=FORWARD_TIMEOUT,
            capture_mode="v0",  # /batch/, like prehog's posthog-go; not left to env
            gzip=False,
            disable_geoip=True,
            before_send=_only_tbot_properties,
        )
        self._log = logging.getLogger("posthog")
        self._log_handler = _SdkLogHandler(self)
        self._log_propagate = self._log.propagate
        self._log.addHandler(self._log_handler)
        # The SDK logs failures with tracebacks; ours is one line per event.
        self._log.propagate = False
        self._worker = threading.Thread(target=self._run, name="posthog-forwarder", daemon=True)
        self._worker_ident: int | None = None
        self._closed = False
        self._worker.start()

    def submit(self, pending: _Pending) -> None:
        with self._qcond:
            if self._closed:
                return
            if len(self._queue) >= FORWARD_QUEUE_MAX:
                self._lines.err(
                    f"collector: not forwarding {pending.record['distinct_id']} to PostHog: "
                    "queue full (the event is in the JSONL file)"
                )
                self._count(ok=False)
                return
            self._queue.append(pending)
            self._qcond.notify()

    def sdk_log(self, message: str) -> None:
        if threading.get_ident() == self._worker_ident:
            self._sdk_errors.append(message)
        else:
            self._lines.err(f"collector: posthog: {message}")

    def _count(self, *, ok: bool) -> None:
        with self.stats.cond:
            if ok:
                self.stats.sent += 1
            else:
                self.stats.failed += 1
            self.stats.cond.notify_all()

    def _run(self) -> None:
        self._worker_ident = threading.get_ident()
        while True:
            with self._qcond:
                while not self._queue:
                    self._qcond.wait()
                item = self._queue.pop(0)
            if item is None:
                return
            self._forward(item)

    def _forward(self, item: _Pending) -> None:
        rec = item.record
        self._sdk_errors.clear()
        try:
            sent = self._client.capture(
                rec["event"],
                distinct_id=rec["distinct_id"],
                properties=dict(rec["properties"]),
                timestamp=item.when,
                uuid=str(uuid.uuid5(_UUID_NAMESPACE, _dedup_key(rec))),
            )
        except Exception as exc:  # the SDK should not raise; never let it kill the worker
            sent = None
            self._sdk_errors.append(f"{type(exc).__name__}: {exc}")
        if sent is not None:
            self._count(ok=True)
            return
        why = self._sdk_errors[-1] if self._sdk_errors else "the SDK did not send it"
        self._lines.err(
            f"collector: forwarding {rec['distinct_id']} to PostHog at {self.host} failed "
            f"(the event is in the JSONL file): {why}"
        )
        self._count(ok=False)

    def close(self, timeout: float = FORWARD_DRAIN_SECONDS) -> None:
        """Forward what is queued (bounded), then release the SDK."""
        with self._qcond:
            if self._closed:
                return
            self._closed = True
            self._queue.append(None)
            self._qcond.notify()
        self._worker.join(timeout)
        if self._worker.is_alive():
            with self._qcond:
                left = sum(1 for item in self._queue if item is not None)
            self._lines.err(
                f"collector: stopped forwarding with {left + 1} event(s) not confirmed "
                "by PostHog (they are in the JSONL file)"
            )
        else:
            with contextlib.suppress(Exception):
                self._client.shutdown()
        self._log.removeHandler(self._log_handler)
        self._log.propagate = self._log_propagate


def _dedup_key(rec: dict[str, Any]) -> str:
    return f"{rec['event']}:{rec['distinct_id']}:{rec['timestamp']}"


class _SdkLogHandler(logging.Handler):
    """Routes the SDK's log records to the forwarder, one line each, no traceback."""

    def __init__(self, forwarder: _Forwarder) -> None:
        super().__init__(logging.WARNING)
        self._forwarder = forwarder

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self._forwarder.sdk_log(record.getMessage())


_KEEP_SDK_PROPERTIES = ("$lib", "$lib_version", "$geoip_disable")


def _only_tbot_properties(msg: dict[str, Any]) -> dict[str, Any]:
    # The SDK adds this host's OS and Python; they would pass for the runner's.
    props = msg.get("properties") or {}
    msg["properties"] = {
        k: v for k, v in props.items() if k.startswith("tbot.") or k in _KEEP_SDK_PROPERTIES
    }
    return msg


# ---------------------------------------------------------------------------
# HTTP / Connect


_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,8}")


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "tbot-collector"
    sys_version = ""

    def version_string(self) -> str:
        return self.server_version

    timeout = SOCKET_TIMEOUT
    # HTTP/1.0: one request per connection, so no idle keep-alive thread
    # outlives a shutdown and unread bodies never desync a connection.
    protocol_version = "HTTP/1.0"
    _answered = False
    _consumed = False
    _codec = ""

    # Dispatch: every method but POST is 405 (http.server would say 501).
    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):
            return self._method_not_allowed
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no access log: the event lines are the log

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server's own errors (bad request line, oversized headers) in Connect's shape.
        self.close_connection = True
        status = HTTPStatus(code)
        connect_code = {400: "invalid_argument", 431: "resource_exhausted"}.get(code, "unknown")
        if code == 414:
            connect_code = "resource_exhausted"
        self._answer_error(
            ConnectError(connect_code, message or status.phrase, status=code), linger=False
        )

    def _method_not_allowed(self) -> None:
        linger = self._may_have_body()
        path = self.path.split("?", 1)[0]
        if path != METHOD_PATH:  # routing comes first, as in connect-go's mux
            self._answer_error(
                ConnectError("unimplemented", f"unknown procedure {path}", status=404),
                linger=linger,
            )
            return
        self._answer_error(
            ConnectError(
                "unimplemented",
                f"{self.command} is not supported: use POST",
                status=405,
                headers={"Allow": "POST"},
            ),
            linger=linger,
        )

    def do_POST(self) -> None:
        received_at = datetime.now(timezone.utc)
        self._consumed = False
        try:
            req = self._read_request()
            self._consumed = True
            self.server.collector._accept(self, req, received_at)
        except ConnectError as exc:
            self._answer_error(exc, linger=not self._consumed)
        except _ClientGone:
            self.close_connection = True
        except Exception as exc:
            self.server.collector._lines.err(
                f"collector: internal error handling {self.path}: {type(exc).__name__}: {exc}"
            )
            if not self._answered:
                self._answer_error(
                    ConnectError("internal", "internal error"), linger=not self._consumed
                )

    # -- request

    def _read_request(self) -> SubmitTbotEventRequest:
        path = self.path.split("?", 1)[0]
        if path != METHOD_PATH:
            raise ConnectError("unimplemented", f"unknown procedure {path}", status=404)
        version = self.headers.get("Connect-Protocol-Version")
        if version is not None and version.strip() != "1":
            raise ConnectError("invalid_argument", "connect-protocol-version must be 1")
        self._codec = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if self._codec not in (PROTO, JSON):
            raise ConnectError(
                "unimplemented",
                f"unsupported content type {self.headers.get('Content-Type')!r}: "
                f"use {PROTO} or {JSON}",
                status=415,
                headers={"Accept-Post": f"{JSON}, {PROTO}"},
            )
        encoding = (self.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding not in ("identity", "gzip"):
            raise ConnectError(
                "unimplemented",
                f"unsupported content encoding {encoding!r}: supported are gzip, identity",
                headers={"Accept-Encoding": "gzip"},
            )
        body = self._read_body()
        if encoding == "gzip":
            body = _gunzip(body)
        return _decode(self._codec, body)

    def _read_body(self) -> bytes:
        te = self.headers.get("Transfer-Encoding")
        if te is not None:
            self.close_connection = True
            if te.strip().lower() != "chunked":
                raise ConnectError(
                    "unimplemented", f"unsupported transfer encoding {te!r}", status=501
                )
            return self._read_chunked()
        lengths = {v.strip() for v in self.headers.get_all("Content-Length") or []}
        if not lengths:
            return b""  # RFC 9112: no length and not chunked means no body
        if len(lengths) != 1 or not next(iter(lengths)).isdigit():
            self.close_connection = True
            raise ConnectError("invalid_argument", "invalid Content-Length")
        length = int(next(iter(lengths)))
        if length > MAX_BODY:
            raise _too_large()
        return self._read_exact(length)

    def _read_exact(self, n: int) -> bytes:
        try:
            data = self.rfile.read(n)
        except OSError as exc:  # includes the socket timeout
            raise _ClientGone from exc
        if len(data) != n:
            raise _ClientGone
        return data

    def _read_line(self) -> bytes:
        try:
            line = self.rfile.readline(1026)
        except OSError as exc:
            raise _ClientGone from exc
        if not line:
            raise _ClientGone
        if not line.endswith(b"\n"):
            raise ConnectError("invalid_argument", "malformed chunked body")
        return line

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size_text = self._read_line().split(b";", 1)[0].strip()
            if not _CHUNK_SIZE.fullmatch(size_text):
                raise ConnectError("invalid_argument", "malformed chunked body")
            size = int(size_text, 16)
            if size == 0:
                break
            total += size
            if total > MAX_BODY:
                raise _too_large()
            parts.append(self._read_exact(size))
            if self._read_exact(2) != b"\r\n":
                raise ConnectError("invalid_argument", "malformed chunked body")
        for _ in range(64):  # trailer section, bounded
            if self._read_line().strip() == b"":
                return b"".join(parts)
        raise ConnectError("invalid_argument", "malformed chunked body")

    def _may_have_body(self) -> bool:
        return bool(self.headers.get("Content-Length") or self.headers.get("Transfer-Encoding"))

    # -- response

    def answer_ok(self) -> None:
        body = b"{}" if self._codec == JSON else b""
        self._answer(200, self._codec, body, {})

    def _answer_error(self, exc: ConnectError, *, linger: bool) -> None:
        body = json.dumps({"code": exc.code, "message": exc.message}).encode()
        if linger:
            self.close_connection = True
        try:
            self._answer(exc.status, JSON, body, exc.headers)
        except OSError:
            return
        if linger:
            self._linger()

    def _answer(self, status: int, ctype: str, body: bytes, headers: dict[str, str]) -> None:
        self._answered = True
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _linger(self) -> None:
        # Answered before reading the body: closing with unread data would
        # send a TCP reset that can destroy the answer in flight. Half-close,
        # then discard (not store) what the client still sends, bounded.
        sock = self.connection
        try:
            sock.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + LINGER_SECONDS
            drained = 0
            while drained < LINGER_BYTES:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                sock.settimeout(left)
                chunk = sock.recv(65536)
                if not chunk:
                    break
                drained += len(chunk)
        except OSError:
            pass


def _too_large() -> ConnectError:
    return ConnectError("resource_exhausted", f"request body larger than {MAX_BODY} bytes")


def _gunzip(body: bytes) -> bytes:
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(body, MAX_BODY + 1)
    except zlib.error as exc:
        raise ConnectError("invalid_argument", f"malformed gzip body: {exc}") from exc
    if len(out) > MAX_BODY:
        raise _too_large()
    if not d.eof:
        raise ConnectError("invalid_argument", "truncated gzip body")
    return out


def _decode(codec: str, body: bytes) -> SubmitTbotEventRequest:
    req = SubmitTbotEventRequest()
    try:
        if codec == PROTO:
            req.ParseFromString(body)
        else:
            json_format.Parse(body.decode("utf-8"), req, ignore_unknown_fields=False)
    # Whatever the parser raises (DecodeError, ParseError, UnicodeError,
    # RecursionError on deep nesting) the body is the client's fault.
    except Exception as exc:
        raise ConnectError(
            "invalid_argument", f"malformed {codec} body: {type(exc).__name__}: {exc}"
        ) from exc
    if req.WhichOneof("event") != "start":
        raise ConnectError("invalid_argument", "event is required (start)")
    if not req.distinct_id:
        raise ConnectError("invalid_argument", "distinct_id is required")
    return req


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 resets connections in a burst
    # (a matrix of CI jobs starting at once).
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], collector: Collector) -> None:
        self.collector = collector
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup for server_name: skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        self.collector._lines.err(
            f"collector: error serving {client_address}: {type(exc).__name__}: {exc}"
        )


# ---------------------------------------------------------------------------
# The collector


class Collector:
    """The server, its JSONL store and the optional PostHog forwarder.

    Binds (port 0 picks a free port) and opens the output on construction;
    ``start()`` serves from a background thread; ``stop()`` stops accepting,
    lets events being stored finish, forwards what is queued and closes.
    Usable as a context manager (started on enter, stopped on exit).
    """

    def __init__(
        self,
        output: str | os.PathLike[str] = DEFAULT_OUTPUT,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        posthog_host: str | None = None,
        posthog_api_key: str | None = None,
        quiet: bool = False,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self._lines = _Lines(stdout, stderr)
        self.quiet = quiet
        self.output = Path(output).absolute()
        self.events = 0
        self._count_lock = threading.Condition()
        self._busy = 0
        self._thread: threading.Thread | None = None
        self._stopped = False
        if posthog_host is not None and not (posthog_api_key or "").strip():
            raise CollectorError(f"--posthog-host needs the project API key in {API_KEY_ENV}")
        try:
            self._server = _HTTPServer((host, port), self)
        except OSError as exc:
            raise OSError(
                exc.errno, f"cannot listen on {host}:{port}: {exc.strerror or exc}"
            ) from exc
        try:
            self._store = _Store(self.output)
        except OSError as exc:
            self._server.server_close()
            raise OSError(exc.errno, f"cannot open {self.output}: {exc.strerror or exc}") from exc
        except BaseException:
            self._server.server_close()
            raise
        self._forwarder: _Forwarder | None = None
        if posthog_host is not None:
            try:
                self._forwarder = _Forwarder(
                    posthog_host, (posthog_api_key or "").strip(), self._lines
                )
            except BaseException:
                self._server.server_close()
                self._store.close()
                raise

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
        if self._forwarder is not None:
            self._forwarder.close()

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- forwarding status (tests, demo)

    @property
    def forwarded(self) -> int:
        return self._forwarder.stats.sent if self._forwarder else 0

    @property
    def forward_failures(self) -> int:
        return self._forwarder.stats.failed if self._forwarder else 0

    def wait_forwarded(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` forwarding attempts ended (sent or failed)."""
        if self._forwarder is None:
            return count <= 0
        stats = self._forwarder.stats
        with stats.cond:
            return stats.cond.wait_for(lambda: stats.sent + stats.failed >= count, timeout)

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

    def _accept(
        self, handler: _Handler, req: SubmitTbotEventRequest, received_at: datetime
    ) -> None:
        try:
            record = to_posthog(req, received_at)
            when = event_time(req, received_at)
        except ValueError as exc:
            raise ConnectError("invalid_argument", f"invalid timestamp: {exc}") from exc
        with self._working():
            self._store.append(record)
            with self._count_lock:
                self.events += 1
            # Stored is stored: a client gone before its answer changes nothing.
            with contextlib.suppress(OSError):
                handler.answer_ok()
            if not self.quiet:
                self._lines.out(describe(record))
            if self._forwarder is not None:
                self._forwarder.submit(_Pending(record, when))


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    output: str | os.PathLike[str] = DEFAULT_OUTPUT,
    **kwargs: Any,
) -> Collector:
    """Start a collector in a background thread; call ``.stop()`` when done."""
    return Collector(output, host, port, **kwargs).start()


# ---------------------------------------------------------------------------
# CLI


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m teleport_auth.collector",
        description="Collect tbot's anonymous telemetry (prehog.v1alpha SubmitTbotEvent over "
        "Connect) into a JSONL file, optionally forwarding it to your own PostHog.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (default 0: a free port)")
    p.add_argument(
        "--output",
        default=DEFAULT_OUTPUT,
        metavar="PATH",
        help=f"JSONL file events are appended to (default {DEFAULT_OUTPUT})",
    )
    p.add_argument(
        "--posthog-host",
        metavar="URL",
        help=f"also forward each event to this PostHog (project key from {API_KEY_ENV})",
    )
    p.add_argument("--port-file", metavar="PATH", help="write the bound port here once listening")
    p.add_argument("--quiet", action="store_true", help="no line per event")
    p.add_argument(
        "--exit-after",
        type=float,
        metavar="SECONDS",
        help="stop by itself after this long (a safety net for scripts and tests)",
    )
    return p


def _write_port_file(path: str, port: int) -> None:
    # Atomic: a script polling for the file never reads it half-written.
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"{port}\n")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be 0-65535, not {args.port}")
    if args.exit_after is not None and not args.exit_after > 0:
        parser.error(f"--exit-after must be a positive number of seconds, not {args.exit_after}")
    api_key = None
    if args.posthog_host is not None:
        url = urlsplit(args.posthog_host)
        if url.scheme not in ("http", "https") or not url.netloc:
            parser.error(f"--posthog-host must be an http(s) URL, not {args.posthog_host!r}")
        api_key = os.environ.get(API_KEY_ENV, "").strip()
        if not api_key:
            parser.error(f"--posthog-host needs the PostHog project API key in {API_KEY_ENV}")

    try:
        collector = Collector(
            args.output,
            args.host,
            args.port,
            posthog_host=args.posthog_host,
            posthog_api_key=api_key,
            quiet=args.quiet,
        )
    except CollectorError as exc:
        print(f"collector: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"collector: {exc.strerror or exc}", file=sys.stderr)
        return 1

    stop = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True  # only a flag: the main loop does the (locking) shutdown

    # Installed before the port file appears, so a SIGTERM right after it is clean.
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        collector.start()
        collector._lines.out(
            f"collector listening on {collector.url} (events → {collector.output})"
        )
        if args.port_file:
            try:
                _write_port_file(args.port_file, collector.port)
            except OSError as exc:
                collector._lines.err(f"collector: cannot write the port file: {exc}")
                collector.stop()
                return 1
        deadline = None if args.exit_after is None else time.monotonic() + args.exit_after
        while not stop and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.1)
        collector.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    collector._lines.out(f"collector stopped ({collector.events} events)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
