"""HTTP: one unary Connect procedure, SubmitTbotEvent, answered as the reference servers do.

Choices where the Connect spec leaves room:

* unknown procedure: 404 with code ``unimplemented`` (what a Connect client
  derives from a bare 404 anyway);
* any method but POST: 405, ``Allow: POST``, code ``unimplemented``
  (connect-go answers 405 too; the method is not idempotent, so no GET);
* a content type other than ``application/proto``, ``application/json`` or
  ``application/json; charset=utf-8`` (compared as connect-go canonicalizes
  them: any case, spacing, a trailing ``;``; any other parameter is refused): 415
  with ``Accept-Post`` and code ``unimplemented`` (connect-go sends 415 with no
  body; the JSON error gives every answer the same shape);
* a ``Connect-Timeout-Ms`` that is not an integer of at most 10 characters, as
  connect-go parses it: 400 ``invalid_argument``;
* ``Content-Encoding`` other than identity/gzip: 501 ``unimplemented`` with
  ``Accept-Encoding``; an empty gzip body is an empty body (never inflated);
* a body over 64 KiB (declared, chunked or after gunzip): 429
  ``resource_exhausted``, answered without reading the rest into memory;
* a ``Content-Length`` that is not ASCII digits fitting 63 bits, or a
  ``Connect-Protocol-Version`` other than ``1``: 400 ``invalid_argument``
  (a missing version header is tolerated);
* no ``start`` event, an empty ``distinct_id`` or an out-of-range timestamp:
  400 ``invalid_argument`` (such an event cannot be stored meaningfully).
"""

from __future__ import annotations

import re
import socket
import socketserver
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from tbot_collector import codec
from tbot_collector.codec import JSON, MAX_BODY, METHOD_PATH, PROTO, ConnectError
from tbot_collector.console import Lines
from teleport_auth._proto.prehog.v1alpha.tbot_pb2 import SubmitTbotEventRequest

# Bounds that keep a misbehaving client from pinning a thread or the shutdown.
SOCKET_TIMEOUT = 10.0
LINGER_SECONDS = 1.0
LINGER_BYTES = 1024 * 1024

_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,8}")
_HTTP_ERROR_CODES = {400: "invalid_argument", 414: "resource_exhausted", 431: "resource_exhausted"}


class Receiver(Protocol):
    """What the server hands a decoded request to (the Collector)."""

    lines: Lines

    def accept(
        self, req: SubmitTbotEventRequest, received_at: datetime, answer: Callable[[], None]
    ) -> None: ...


class _ClientGone(Exception):
    """The client stalled or hung up mid-request: there is nobody to answer."""


class Handler(BaseHTTPRequestHandler):
    server: HTTPServer
    server_version = "tbot-collector"
    sys_version = ""
    timeout = SOCKET_TIMEOUT
    # HTTP/1.0: one request per connection, so no idle keep-alive thread
    # outlives a shutdown and unread bodies never desync a connection.
    protocol_version = "HTTP/1.0"
    _answered = False
    _consumed = False
    _codec = ""

    def version_string(self) -> str:
        return self.server_version

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
        connect_code = _HTTP_ERROR_CODES.get(code, "unknown")
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
            self.server.receiver.accept(req, received_at, self.answer_ok)
        except ConnectError as exc:
            self._answer_error(exc, linger=not self._consumed)
        except _ClientGone:
            self.close_connection = True
        except Exception as exc:
            # The path and header come from the client: Lines escapes them.
            self.server.receiver.lines.err(
                f"collector: internal error handling {self.command} {self.path} "
                f"(Content-Type: {self.headers.get('Content-Type')}): "
                f"{type(exc).__name__}: {exc}"
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
        given = self.headers.get("Content-Type") or ""
        self._codec = codec.CONTENT_TYPES.get(codec.canonical_content_type(given), "")
        if not self._codec:
            raise ConnectError(
                "unimplemented",
                f"unsupported content type {given!r}: use {PROTO}, {JSON} or {JSON}; charset=utf-8",
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
        # Checked, as connect-go checks it, but not applied: answering takes no time.
        codec.timeout_ms(self.headers.get("Connect-Timeout-Ms"))
        body = self._read_body()
        # A zero-length body is not a gzip stream: it reaches the codec as is.
        if encoding == "gzip" and body:
            body = codec.gunzip(body)
        return codec.decode(self._codec, body)

    def _read_body(self) -> bytes:
        te = self.headers.get("Transfer-Encoding")
        if te is not None:
            self.close_connection = True
            if te.strip().lower() != "chunked":
                raise ConnectError(
                    "unimplemented", f"unsupported transfer encoding {te!r}", status=501
                )
            return self._read_chunked()
        try:
            length = codec.content_length(self.headers.get_all("Content-Length") or [])
        except ConnectError:
            self.close_connection = True
            raise
        if length is None:
            return b""  # RFC 9112: no length and not chunked means no body
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
                raise codec.too_large()
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
        self._answer(200, self._codec, codec.ok_body(self._codec), {})

    def _answer_error(self, exc: ConnectError, *, linger: bool) -> None:
        if linger:
            self.close_connection = True
        try:
            self._answer(exc.status, JSON, exc.body(), exc.headers)
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


class HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 resets connections in a burst
    # (a matrix of CI jobs starting at once).
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], receiver: Receiver) -> None:
        self.receiver = receiver
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup for server_name: skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        self.receiver.lines.err(
            f"collector: error serving {client_address}: {type(exc).__name__}: {exc}"
        )
