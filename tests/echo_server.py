"""A tiny TCP echo server on 127.0.0.1: the backend behind the tbot stand-in's tunnels.

In a test::

    with EchoServer() as echo:
        env["STANDIN_TBOT_BACKEND"] = echo.hostport
        ...
        assert echo.connections == 1

or as a process that stops by itself (``--exit-after`` seconds, default 60)::

    python tests/echo_server.py --port-file PATH [--exit-after SECONDS]

It listens on a free port, echoes every byte back, half-closes when the client
does, and stops by itself after ``exit_after`` seconds even if nobody stops it.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import socketserver
import sys
import threading
from pathlib import Path
from types import TracebackType

DEFAULT_EXIT_AFTER = 60.0


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now (for a tunnel's listen, say)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.lock = threading.Lock()
        self.connections = 0
        self.clients: set[socket.socket] = set()


class _Echo(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        sock: socket.socket = self.request
        with self.server.lock:
            self.server.connections += 1
            self.server.clients.add(sock)
        try:
            while data := sock.recv(65536):
                sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the client went away, or the server is stopping
        finally:
            with self.server.lock:
                self.server.clients.discard(sock)


class EchoServer:
    """Start on entry (or with ``start()``); stop on exit, on ``stop()``, or by itself."""

    def __init__(self, exit_after: float = DEFAULT_EXIT_AFTER) -> None:
        self.exit_after = exit_after
        self._server = _Server()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._stopped = threading.Event()  # stop asked
        self._closed = threading.Event()  # port closed

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def hostport(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        """How many connections it has accepted so far."""
        with self._server.lock:
            return self._server.connections

    def _serve(self) -> None:
        # A short poll interval: shutdown() waits for it.
        self._server.serve_forever(poll_interval=0.05)

    def start(self) -> EchoServer:
        self._thread.start()
        threading.Thread(target=self._expire, daemon=True).start()
        return self

    def _expire(self) -> None:
        if not self._stopped.wait(self.exit_after):
            self.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until it has stopped and closed its port; True if it has."""
        return self._closed.wait(timeout)

    def stop(self) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self._server.shutdown()
        self._server.server_close()
        with self._server.lock:
            clients = list(self._server.clients)
        for sock in clients:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)
        self._closed.set()

    def __enter__(self) -> EchoServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port-file", type=Path, help="write the port here once listening")
    parser.add_argument("--exit-after", type=float, default=DEFAULT_EXIT_AFTER)
    args = parser.parse_args(argv)
    server = EchoServer(exit_after=args.exit_after).start()
    if args.port_file:
        # Write then rename: a reader never sees a half-written port.
        tmp = args.port_file.with_name(args.port_file.name + ".tmp")
        tmp.write_text(f"{server.port}\n", encoding="utf-8")
        tmp.replace(args.port_file)
    else:
        print(server.port, flush=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
