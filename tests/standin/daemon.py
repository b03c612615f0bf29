"""tbot as a daemon (``oneshot: false``): diagnostics endpoints, tunnel listeners, stopping.

What it does, in tbot's order: serve the diagnostics endpoints (``--diag-addr``
or ``diag_addr``), open each tunnel's ``listen`` address (a taken port is one
``ERROR:`` line and exit 1, as tbot fails), join (``STANDIN_TBOT_DELAY``,
``STANDIN_TBOT_FAIL``), write the outputs, wait ``STANDIN_TBOT_READY_DELAY``,
then report ready and relay every connection to ``STANDIN_TBOT_BACKEND``. It
stops on SIGTERM or SIGINT (exit 0, listeners closed) and by itself after
``STANDIN_TBOT_MAX_LIFETIME`` seconds, so that no test can leave one behind.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

from .config import BotConfig
from .console import Logger, fail, os_error

DEFAULT_MAX_LIFETIME = 600.0
# The stand-in's assumption: /wait exists from the version the daemon actions require.
WAIT_ENDPOINT_SINCE = (18, 6, 4)
NOT_FOUND = (
    "404 - Not Found\n\nI'm a little tbot,\nshort and stout,\nthe page you seek,\n"
    "is not about.\n\nYou can find out more information about the diagnostics service at "
    "https://goteleport.com/docs/reference/machine-id/diagnostics-service/"
)
_CONNECT_TIMEOUT = 10.0


class Knobs:
    """The daemon's STANDIN_TBOT_* settings, checked before anything starts."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.ready_delay = _seconds(env, "STANDIN_TBOT_READY_DELAY", 0.0)
        self.max_lifetime = _seconds(env, "STANDIN_TBOT_MAX_LIFETIME", DEFAULT_MAX_LIFETIME)
        wait = env.get("STANDIN_TBOT_WAIT", "")
        if wait not in ("", "poll", "block"):
            fail(f"tbot stand-in: STANDIN_TBOT_WAIT must be poll or block: {wait!r}")
        self.wait_blocks = wait == "block"
        self.backend: tuple[str, int] | None = None
        if backend := env.get("STANDIN_TBOT_BACKEND", ""):
            host, _, port = backend.rpartition(":")
            if not host or not port.isdigit():
                fail(f"tbot stand-in: STANDIN_TBOT_BACKEND must be host:port: {backend!r}")
            self.backend = (host.strip("[]"), int(port))


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name, "")
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also refuses nan
        fail(f"tbot stand-in: {name} is not a number of seconds: {text!r}")
    return value


def version_tuple(version: str) -> tuple[int, ...]:
    parts: list[int] = []
    for part in version.split("-", 1)[0].split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


# --- readiness ---------------------------------------------------------------


class Registry:
    """Service statuses for /readyz and /wait: all initializing, then all healthy."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.ready = threading.Event()
        self.updated_at: str | None = None

    def mark_ready(self) -> None:
        self.updated_at = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
        self.ready.set()

    def service(self, name: str) -> dict[str, Any]:
        healthy = self.ready.is_set()
        return {
            "status": "healthy" if healthy else "initializing",
            "updated_at": self.updated_at if healthy else None,
        }

    def overall(self) -> dict[str, Any]:
        return {
            "status": "healthy" if self.ready.is_set() else "unhealthy",
            "services": {name: self.service(name) for name in self.names},
        }


def service_names(cfg: BotConfig) -> list[str]:
    outputs = [f"{out.kind}-output-{i + 1}" for i, out in enumerate(cfg.outputs)]
    return outputs + [svc.name for svc in cfg.services]


def diag_handler(
    registry: Registry, wait_exists: bool, wait_blocks: bool, stopping: threading.Event
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/livez":
                self._reply(200, "OK", "text/plain; charset=utf-8")
            elif path == "/readyz":
                self._status(registry.overall())
            elif path.startswith("/readyz/") and path[8:] in registry.names:
                self._status(registry.service(path[8:]))
            elif path.startswith("/readyz/"):
                body = {"error": f'Service named "{path[8:]}" not found.'}
                self._reply(404, json.dumps(body, indent=2), "application/json")
            elif path == "/wait" and wait_exists:
                if wait_blocks:  # hold the request until every service has reported
                    while not registry.ready.wait(0.05) and not stopping.is_set():
                        pass
                self._status(registry.overall())
            else:
                self._reply(404, NOT_FOUND, "text/plain; charset=utf-8")

        def _status(self, status: dict[str, Any]) -> None:
            code = 200 if status["status"] == "healthy" else 503
            self._reply(code, json.dumps(status, indent=2), "application/json")

        def _reply(self, code: int, body: str, content_type: str) -> None:
            data = body.encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # tbot does not log each request

    return Handler


# --- tunnels -------------------------------------------------------------------


class Relays:
    """Open client and backend sockets, closed together when the daemon stops."""

    def __init__(self, backend: tuple[str, int] | None, console: Logger) -> None:
        self.backend = backend
        self.console = console
        self.lock = threading.Lock()
        self.sockets: set[socket.socket] = set()
        self.closed = False

    def track(self, sock: socket.socket) -> bool:
        with self.lock:
            if not self.closed:
                self.sockets.add(sock)
            return not self.closed

    def untrack(self, sock: socket.socket) -> None:
        with self.lock:
            self.sockets.discard(sock)

    def close_all(self) -> None:
        with self.lock:
            self.closed = True
            sockets, self.sockets = self.sockets, set()
        for sock in sockets:
            _close(sock)

    def serve(self, client: socket.socket, service: str) -> None:
        if self.backend is None:
            self.console.warn(
                "TBOT",
                "tbot stand-in: no STANDIN_TBOT_BACKEND, closing connection.",
                "standin",
                service=service,
            )
            return
        try:
            upstream = socket.create_connection(self.backend, timeout=_CONNECT_TIMEOUT)
        except OSError as exc:
            self.console.error(
                "TBOT",
                "Failed to handle connection.",
                "alpnproxy/local_proxy.go:206",
                service=service,
                error=f"dial {self.backend[0]}:{self.backend[1]}: {exc}",
            )
            return
        upstream.settimeout(None)
        if not self.track(upstream):
            _close(upstream)
            return
        pump = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        pump.start()
        _pump(client, upstream)
        pump.join()
        self.untrack(upstream)
        _close(upstream)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy until EOF, then pass the EOF on (half-close), as a TCP relay does."""
    try:
        while data := source.recv(65536):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        _close(sink)  # a reset on one side ends the other too


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


def open_listener(listen: str, service: str, relays: Relays) -> socketserver.BaseServer:
    """Bind now (connections wait in the backlog until ready); fail as Go's net.Listen."""
    import urllib.parse

    parsed = urllib.parse.urlsplit(listen)

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            if relays.track(self.request):
                try:
                    relays.serve(self.request, service)
                finally:
                    relays.untrack(self.request)

    server: socketserver.BaseServer
    if parsed.scheme in ("tcp", ""):
        address = parsed.netloc
        host, sep, port = address.rpartition(":")
        if not sep:
            fail(f"opening listener: listen tcp: address {address}: missing port in address")
        if not port.isdigit():
            fail(f'opening listener: listen tcp: lookup tcp/{port}: unknown port "{port}"')
        server_class = _TCP6 if ":" in host.strip("[]") else _TCP
        try:
            server = server_class((host.strip("[]"), int(port)), Handler)
        except OSError as exc:
            fail(f"opening listener: listen tcp {address}: bind: {os_error(exc)}")
    elif parsed.scheme == "unix":
        import os

        path = os.path.abspath(parsed.path)
        if os.path.exists(path):
            os.remove(path)  # tbot removes a socket left by an unclean exit
        try:
            server = _Unix(path, Handler)
        except OSError as exc:
            fail(f'opening listener: creating unix socket "{path}": {os_error(exc)}')
    else:
        fail(f'opening listener: unsupported scheme "{parsed.scheme}"')
    return server


class _TCP(socketserver.ThreadingTCPServer):
    allow_reuse_address = True  # as Go's listeners on Linux
    daemon_threads = True
    block_on_close = False


class _TCP6(_TCP):
    address_family = socket.AF_INET6


class _Unix(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    block_on_close = False

    def server_close(self) -> None:
        import os

        super().server_close()
        with contextlib.suppress(OSError):
            os.remove(str(self.server_address))  # Go removes its socket file on close


# --- the daemon ------------------------------------------------------------------


class Daemon:
    def __init__(self, cfg: BotConfig, knobs: Knobs, console: Logger, version: str) -> None:
        self.cfg = cfg
        self.knobs = knobs
        self.console = console
        self.version = version
        self.deadline = time.monotonic() + knobs.max_lifetime
        self.stopping = threading.Event()
        self.signal_name = ""
        self.registry = Registry(service_names(cfg))
        self.relays = Relays(knobs.backend, console)
        self.opened: list[socketserver.BaseServer] = []
        self.serving: list[tuple[socketserver.BaseServer, threading.Thread]] = []

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signal_name = signal.Signals(signum).name
        self.stopping.set()

    def sleep(self, seconds: float) -> bool:
        """Wait, cut short by a signal or the lifetime limit; False when stopping."""
        until = min(time.monotonic() + seconds, self.deadline)
        while not self.stopping.is_set():
            left = until - time.monotonic()
            if left <= 0:
                break
            self.stopping.wait(min(left, 0.5))
        return not self.stopping.is_set() and time.monotonic() < self.deadline

    def _serve(self, server: socketserver.BaseServer) -> None:
        # A short poll interval: shutdown() waits for it.
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        self.serving.append((server, thread))

    def start_diagnostics(self, diag_addr: str) -> None:
        host, sep, port = diag_addr.rpartition(":")
        if not sep or not port.isdigit():
            fail(f"listen tcp: address {diag_addr}: missing port in address")
        handler = diag_handler(
            self.registry,
            version_tuple(self.version) >= WAIT_ENDPOINT_SINCE,
            self.knobs.wait_blocks,
            self.stopping,
        )
        try:
            server = ThreadingHTTPServer((host.strip("[]"), int(port)), handler)
        except OSError as exc:
            fail(f"listen tcp {diag_addr}: bind: {os_error(exc)}")
        server.daemon_threads = True
        self.opened.append(server)
        self._serve(server)
        self.console.info(
            "TBOT",
            "diagnostics service will be starting",
            "diagnostics/service.go:83",
            addr=diag_addr,
        )

    def run(self, diag_addr: str, join: Callable[[Callable[[float], bool]], int | None]) -> int:
        """``join(sleep)`` joins and writes the outputs; it returns an exit code when it
        fails, and None when it succeeded or was cut short (``sleep`` returned False)."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            if diag_addr:
                self.start_diagnostics(diag_addr)
            listeners = []
            for svc in self.cfg.services:
                if svc.is_tunnel:
                    listeners.append((svc, open_listener(svc.listen, svc.name, self.relays)))
                    self.opened.append(listeners[-1][1])
            code = join(self.sleep)
            if code is not None:
                return code
            if not self.sleep(self.knobs.ready_delay):
                return self.stop()
            for svc, server in listeners:
                self._serve(server)
                self.console.info(
                    "TBOT",
                    "Listening for connections.",
                    "database/tunnel_service.go:262",
                    service=svc.name,
                    address=svc.listen,
                )
            self.registry.mark_ready()
            self.console.info("TBOT", "All services are ready.", "tbot/tbot.go:402")
            self.sleep(float("inf"))
            return self.stop()
        finally:
            self.shutdown()

    def stop(self) -> int:
        if self.signal_name:
            self.console.info(
                "TBOT",
                "Received signal, shutting down.",
                "tbot/tbot.go:331",
                signal=self.signal_name,
            )
        else:
            self.console.warn(
                "TBOT",
                "tbot stand-in: lifetime limit reached, exiting.",
                "standin",
                max_lifetime=f"{self.knobs.max_lifetime:g}s",
            )
        return 0

    def shutdown(self) -> None:
        self.stopping.set()  # releases held /wait requests
        for server, thread in self.serving:
            server.shutdown()
            thread.join(5)
        for server in self.opened:
            server.server_close()
        self.relays.close_all()
