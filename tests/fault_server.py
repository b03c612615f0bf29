"""A local HTTP endpoint that misbehaves on request, for telemetry tests.

``FaultServer(mode)`` listens on 127.0.0.1 (port chosen by the OS) in a
background thread, records every request it receives and answers according
to ``mode``:

- ``ok``: 200, application/proto, empty body (an empty SubmitTbotEventResponse)
- ``hang``: reads the request, never answers until stopped
- ``hang_accept``: accepts the connection, reads nothing, never answers
- ``reset``: reads the request, then closes with a TCP RST (SO_LINGER 0)
- ``http500``: 500, no body
- ``unavailable``: 503 with a Connect JSON error {"code": "unavailable", ...}
- ``garbage``: 200, application/proto, bytes that are no valid message
- ``wrong_type``: 200, text/html
- ``flaky``: the first request gets ``unavailable``, later ones ``ok``
- ``redirect``: 302 to another path on this server (a followed redirect shows
  up as a second request)
- ``respond``: answers ``status``/``content_type``/``body`` given as options
- ``slow_body``: a valid 200 whose headers leave ``head_delay`` seconds after
  the request arrived and whose (two-byte) body leaves ``body_delay`` seconds
  after it: a slow server, for the client's deadline

Options: ``head_delay`` and ``body_delay`` (for ``slow_body``), ``gate`` (a
threading.Event every answer waits for, to hold a response until the test says
so), ``status``, ``content_type``, ``body`` and ``headers`` (for ``respond``),
``tls`` (a server-side ssl.SSLContext: the server speaks HTTPS and its ``url``
is https://; a client that rejects the certificate is counted in
``handshake_failures``), and ``safety_timeout`` (seconds after which the server
stops itself, so it never outlives a test).
Anything that is not HTTP (a TLS ClientHello, say) gets a plain-text 400 and
is counted in ``non_http``, not recorded as a request.

``private_ca(directory)`` makes a throwaway CA and a certificate for
127.0.0.1 signed by it (with the ``openssl`` command), for ``tls``;
``clear_tls_environment`` removes the machine's CA settings from a test.

No sleeps: waiting is done on Events and a Condition.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import ssl
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pytest

MODES = frozenset(
    {
        "ok",
        "hang",
        "hang_accept",
        "reset",
        "http500",
        "unavailable",
        "garbage",
        "wrong_type",
        "flaky",
        "redirect",
        "respond",
        "slow_body",
    }
)

GARBAGE_BODY = b"\xff\xff\xff"
UNAVAILABLE_MESSAGE = "reporting service is overloaded"
_MAX_HEAD_BYTES = 64 * 1024
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    # Header names as the client spelled them; `header_lines` keeps duplicates.
    headers: dict[str, str]
    header_lines: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.header_lines:
            if key.lower() == name.lower():
                return value
        return None


def _response(
    status: int, reason: str, *, content_type: str | None = None, body: bytes = b"", extra: str = ""
) -> bytes:
    head = f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
    if content_type is not None:
        head += f"Content-Type: {content_type}\r\n"
    return (head + extra + "\r\n").encode("ascii") + body


_OK = _response(200, "OK", content_type="application/proto")
_UNAVAILABLE = _response(
    503,
    "Service Unavailable",
    content_type="application/json",
    body=json.dumps({"code": "unavailable", "message": UNAVAILABLE_MESSAGE}).encode(),
)


class FaultServer:
    def __init__(
        self,
        mode: str,
        *,
        gate: threading.Event | None = None,
        status: int = 200,
        content_type: str | None = "application/proto",
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
        safety_timeout: float = 10.0,
        head_delay: float = 0.0,
        body_delay: float = 0.0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        self.mode = mode
        self._gate = gate
        extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
        self._custom = _response(
            status, "Custom", content_type=content_type, body=body, extra=extra
        )
        self._safety_timeout = safety_timeout
        self._head_delay = head_delay
        self._body_delay = body_delay
        self.slow_body_sent = threading.Event()
        self._tls = tls
        self.handshake_failures = 0
        self._lock = threading.Lock()
        self._received = threading.Condition(self._lock)
        self._requests: list[ReceivedRequest] = []
        self._connections: list[socket.socket] = []
        self._handlers: list[threading.Thread] = []
        self._answered = 0
        self.non_http = 0
        self._stopped = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        # The accept loop sleeps in select() on the listener and this pair;
        # stop() writes a byte to wake it.
        self._wake_r, self._wake_w = socket.socketpair()
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._safety = threading.Timer(safety_timeout, self.stop)
        self._safety.daemon = True

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> FaultServer:
        self._accept_thread.start()
        self._safety.start()
        return self

    def stop(self) -> None:
        with self._lock:
            if self._stopped.is_set():
                return
            self._stopped.set()
            connections = list(self._connections)
        self._safety.cancel()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        for conn in connections:
            # shutdown wakes a handler blocked in recv(); close alone may not.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if threading.current_thread() is not self._accept_thread:
            self._accept_thread.join(self._safety_timeout)
        for handler in list(self._handlers):
            if handler is not threading.current_thread():
                handler.join(self._safety_timeout)
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what the tests look at ----------------------------------------------

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Block until ``count`` requests were recorded; False on timeout."""
        with self._received:
            return self._received.wait_for(lambda: len(self._requests) >= count, timeout)

    def wait_for_handshake_failures(self, count: int, timeout: float = 5.0) -> bool:
        """Block until ``count`` clients rejected the TLS handshake; False on timeout."""
        with self._received:
            return self._received.wait_for(lambda: self.handshake_failures >= count, timeout)

    # -- serving -------------------------------------------------------------

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopped.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self._wake_r or self._stopped.is_set():
                        return
                    try:
                        conn, _addr = self._listener.accept()
                    except OSError:
                        return
                    handler = threading.Thread(target=self._handle, args=(conn,), daemon=True)
                    with self._lock:
                        if self._stopped.is_set():
                            conn.close()
                            return
                        self._connections.append(conn)
                        self._handlers.append(handler)
                    handler.start()

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(self._safety_timeout)
        try:
            if self.mode == "hang_accept":
                self._stopped.wait(self._safety_timeout)
                return
            if self._tls is not None:
                conn = self._secure(conn, self._tls)
            request = self._read_request(conn)
            if request is None:
                return
            with self._received:
                self._requests.append(request)
                self._received.notify_all()
            if self._gate is not None:
                self._gate.wait(self._safety_timeout)
            self._answer(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def _secure(self, raw: socket.socket, tls: ssl.SSLContext) -> ssl.SSLSocket:
        """The connection after the server side of the TLS handshake."""
        secured = tls.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
        with self._lock:
            # wrap_socket took over the file descriptor: stop() must shut down this one.
            self._connections = [secured if c is raw else c for c in self._connections]
        try:
            secured.do_handshake()
        except OSError:
            with self._received:
                self.handshake_failures += 1
                self._received.notify_all()
            secured.close()
            raise
        return secured

    def _answer(self, conn: socket.socket) -> None:
        mode = self.mode
        if mode == "flaky":
            with self._lock:
                self._answered += 1
                mode = "unavailable" if self._answered == 1 else "ok"
        if mode == "hang":
            self._stopped.wait(self._safety_timeout)
            return
        if mode == "slow_body":
            # An empty SubmitTbotEventResponse plus an unknown field (15 = 1): still valid.
            body = b"\x78\x01"
            head = _response(200, "OK", content_type="application/proto", body=body)
            received = time.monotonic()
            if self._stopped.wait(self._head_delay):
                return
            conn.sendall(head[: -len(body)])
            if self._stopped.wait(max(0.0, received + self._body_delay - time.monotonic())):
                return
            conn.sendall(body)
            self.slow_body_sent.set()
            conn.shutdown(socket.SHUT_WR)
            return
        if mode == "reset":
            # Linger on with a zero timeout: close() sends RST instead of FIN.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        responses = {
            "ok": _OK,
            "unavailable": _UNAVAILABLE,
            "http500": _response(500, "Internal Server Error"),
            "garbage": _response(200, "OK", content_type="application/proto", body=GARBAGE_BODY),
            "wrong_type": _response(
                200, "OK", content_type="text/html", body=b"<html><body>hello</body></html>"
            ),
            "redirect": _response(302, "Found", extra="Location: /elsewhere\r\n"),
            "respond": self._custom,
        }
        conn.sendall(responses[mode])
        conn.shutdown(socket.SHUT_WR)

    def _read_request(self, conn: socket.socket) -> ReceivedRequest | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
            # HTTP starts with a method name; a TLS ClientHello starts with 0x16.
            if not data[:1].isalpha() or len(data) > _MAX_HEAD_BYTES:
                with self._lock:
                    self.non_http += 1
                conn.sendall(_response(400, "Bad Request", content_type="text/plain", body=b"?"))
                conn.shutdown(socket.SHUT_WR)
                return None
        head, _, body = data.partition(b"\r\n\r\n")
        request_line, *lines = head.decode("latin-1").split("\r\n")
        method, path, _version = request_line.split(" ", 2)
        header_lines = tuple(
            (name.strip(), value.strip())
            for name, value in (line.split(":", 1) for line in lines if ":" in line)
        )
        headers = dict(header_lines)
        length = next((int(v) for k, v in header_lines if k.lower() == "content-length"), 0)
        while len(body) < length:
            chunk = conn.recv(length - len(body))
            if not chunk:
                break
            body += chunk
        return ReceivedRequest(method, path, headers, header_lines, body)


@dataclass(frozen=True)
class PrivateCA:
    """A CA no machine trusts, and a server certificate for 127.0.0.1 it signed."""

    ca_file: Path  # the CA certificate, PEM: a value for SSL_CERT_FILE or REQUESTS_CA_BUNDLE
    cert_dir: Path  # a hashed directory holding only the CA: a value for SSL_CERT_DIR
    server_cert: Path
    server_key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.server_cert, self.server_key)
        return context


def _openssl(*args: str | Path) -> str:
    done = subprocess.run(
        ["openssl", *map(str, args)], capture_output=True, text=True, check=False, timeout=60
    )
    if done.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {done.stderr.strip()}")
    return done.stdout


def private_ca(
    directory: Path,
    name: str = "Private Test CA",
    server_names: str = "IP:127.0.0.1,DNS:localhost",
) -> PrivateCA:
    """Make a CA and a server certificate (for ``server_names``) in ``directory``.

    With the ``openssl`` command, EC P-256 keys, valid for two days.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_file = directory / "ca.key", directory / "ca.pem"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    _openssl(
        "req", "-x509", *new_key, "-keyout", ca_key, "-out", ca_file, "-days", "2",
        "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    _openssl("req", "-new", *new_key, "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1")
    # What strict verifiers (Python 3.13's X509_STRICT among them) require of a leaf.
    extensions = directory / "server.ext"
    extensions.write_text(
        f"subjectAltName={server_names}\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid:always\n"
    )
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca_file, "-CAkey", ca_key, "-set_serial", "2",
        "-days", "2", "-extfile", extensions, "-out", cert,
    )  # fmt: skip
    # OpenSSL looks a CA up in a directory by its subject hash: <hash>.0.
    cert_dir = directory / "certs"
    cert_dir.mkdir(exist_ok=True)
    subject_hash = _openssl("x509", "-in", ca_file, "-noout", "-subject_hash").strip()
    (cert_dir / f"{subject_hash}.0").write_bytes(ca_file.read_bytes())
    return PrivateCA(ca_file=ca_file, cert_dir=cert_dir, server_cert=cert, server_key=key)


def refused_port() -> int:
    """A local port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def held_refused_port() -> Iterator[int]:
    """Like refused_port, but the port stays bound (never listening) so no one can take it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        yield port


_CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


def clear_tls_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Drop CA settings the test machine may carry (some set REQUESTS_CA_BUNDLE globally)."""
    for name in _CA_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def clear_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a proxy configured on the test machine from intercepting 127.0.0.1."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
