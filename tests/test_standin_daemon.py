"""The stand-in as a daemon (``oneshot: false``), as the tunnel and proxy actions run it.

Every daemon a test starts is reaped by the fixture (killed if still running);
each one also stops by itself (STANDIN_TBOT_MAX_LIFETIME). Backends are a TCP
echo server on 127.0.0.1 (tests/echo_server.py).
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import TBOT_KUBECONFIG_FILE
from echo_server import EchoServer, free_port
from standin.harness import (
    Collector,
    Config,
    Standin,
    directory,
    enable_telemetry,
    error_lines,
    tunnel_config,
)
from step_helpers import LIMIT, echo_through
from teleport_auth._proto.prehog.v1alpha import tbot_pb2

# The daemon actions require tbot 18.6.4 (docs/compatibility.md); /wait needs it too.
VERSION = "18.6.4"
TUNNELS = ["database-tunnel", "application-tunnel", "application-proxy"]


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def closed_by_peer(port: int) -> bool:
    """Connect and read: True when the other end closes (or resets) the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=LIMIT) as sock:
        try:
            return sock.recv(16) == b""
        except ConnectionResetError:
            return True


@dataclass
class Daemon:
    proc: subprocess.Popen[bytes]
    log_path: Path
    diag_port: int
    seen: list[int] = field(default_factory=list)

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def get(self, path: str, timeout: float = 5) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.diag_port, timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read().decode()
        finally:
            conn.close()

    def poll(self, path: str, status: int) -> None:
        """GET ``path`` until it answers ``status``; every answer is kept in ``seen``."""
        deadline = time.monotonic() + LIMIT
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log
            try:
                code, _ = self.get(path)
            except ConnectionRefusedError:  # not listening yet
                code = 0
            if code:
                self.seen.append(code)
            if code == status:
                return
            time.sleep(0.05)
        pytest.fail(f"{path} never answered {status}: {self.seen}\n{self.log}")

    def wait_for_log(self, text: str) -> None:
        deadline = time.monotonic() + LIMIT
        while text not in self.log:
            assert time.monotonic() < deadline, self.log
            assert self.proc.poll() is None, self.log
            time.sleep(0.05)

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.proc.send_signal(signum)
        return self.proc.wait(timeout=LIMIT)


StartDaemon = Callable[..., Daemon]


@pytest.fixture
def standin(standin: Standin) -> Standin:
    # The shared stand-in, set up for daemons.
    standin.env.update(
        STANDIN_TBOT_VERSION=VERSION,
        STANDIN_TBOT_READY_DELAY="0",
        STANDIN_TBOT_MAX_LIFETIME=str(LIMIT * 3),  # a safety net should a test lose one
    )
    return standin


@pytest.fixture
def start_daemon(standin: Standin) -> Iterator[StartDaemon]:
    """Start ``tbot start -c CFG --diag-addr 127.0.0.1:PORT`` as the actions do, its
    output going to a log file; every daemon is reaped at the end of the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(
        config: Config, *flags: str, diag_port: int | None = None, diag_flag: bool = True
    ) -> Daemon:
        port = free_port() if diag_port is None else diag_port
        if diag_flag:
            flags = ("--diag-addr", f"127.0.0.1:{port}", *flags)
        path = standin.write_config(config)
        log_path = standin.tmp / f"tbot-{len(started)}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [str(standin.exe), "start", "-c", str(path), *flags],
                env=standin.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started.append(proc)
        return Daemon(proc, log_path, port)

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=LIMIT)


# --- readiness -------------------------------------------------------------------------


def test_wait_answers_503_until_ready_then_200(standin: Standin, start_daemon: StartDaemon) -> None:
    standin.env["STANDIN_TBOT_READY_DELAY"] = "1.5"
    config = tunnel_config("database-tunnel", f"tcp://127.0.0.1:{free_port()}")
    config["services"][0]["name"] = "db"
    daemon = start_daemon(config)
    daemon.poll("/livez", 200)  # serving, not ready yet

    code, body = daemon.get("/readyz")
    assert code == 503
    assert json.loads(body)["services"] == {"db": {"status": "initializing", "updated_at": None}}
    daemon.seen.clear()
    daemon.poll("/wait", 200)
    assert daemon.seen[0] == 503  # the first /wait answer, before the ready delay ran out

    assert daemon.get("/wait")[0] == 200  # and it stays ready
    code, body = daemon.get("/readyz")
    status = json.loads(body)
    assert (code, status["status"], status["services"]["db"]["status"]) == (
        200,
        "healthy",
        "healthy",
    )
    assert daemon.get("/readyz/db")[0] == 200
    assert daemon.get("/livez") == (200, "OK")
    code, body = daemon.get("/readyz/nope")
    assert (code, json.loads(body)) == (404, {"error": 'Service named "nope" not found.'})
    code, body = daemon.get("/metrics-nope")
    assert (code, body.splitlines()[0]) == (404, "404 - Not Found")
    assert daemon.stop() == 0


def test_wait_can_block_until_ready_like_newer_tbot(
    standin: Standin, start_daemon: StartDaemon
) -> None:
    standin.env.update(STANDIN_TBOT_WAIT="block", STANDIN_TBOT_READY_DELAY="1.5")
    daemon = start_daemon(tunnel_config("application-proxy", f"tcp://127.0.0.1:{free_port()}"))
    daemon.poll("/livez", 200)
    assert daemon.get("/readyz")[0] == 503
    code, body = daemon.get("/wait", timeout=LIMIT)  # held until the services are ready
    assert (code, json.loads(body)["status"]) == (200, "healthy")
    assert daemon.stop() == 0


@pytest.mark.parametrize(
    ("version", "wait_status"),
    [("17.2.8", 404), ("18.6.3", 404), ("18.6.4", 200), ("19.0.1", 200)],
)
def test_wait_exists_from_18_6_4(
    standin: Standin, start_daemon: StartDaemon, version: str, wait_status: int
) -> None:
    standin.env["STANDIN_TBOT_VERSION"] = version
    daemon = start_daemon(tunnel_config("application-proxy", f"tcp://127.0.0.1:{free_port()}"))
    daemon.poll("/readyz", 200)
    code, body = daemon.get("/wait")
    assert code == wait_status
    assert ("I'm a little tbot" in body) is (wait_status == 404)
    assert daemon.stop() == 0


def test_diag_address_from_config_and_the_flag_wins(
    standin: Standin, start_daemon: StartDaemon
) -> None:
    config = tunnel_config("application-proxy", f"tcp://127.0.0.1:{free_port()}")
    config_port = free_port()
    config["diag_addr"] = f"127.0.0.1:{config_port}"
    from_config = start_daemon(config, diag_port=config_port, diag_flag=False)
    from_config.poll("/wait", 200)
    assert from_config.stop() == 0

    flag_port = free_port()
    config["services"][0]["listen"] = f"tcp://127.0.0.1:{free_port()}"
    overridden = start_daemon(
        config, f"--diag-addr=127.0.0.1:{flag_port}", diag_port=flag_port, diag_flag=False
    )
    overridden.poll("/wait", 200)
    assert refused(config_port)
    assert overridden.stop() == 0


def test_without_diag_address_it_runs_all_the_same(standin: Standin, tmp_path: Path) -> None:
    config = tunnel_config("application-proxy", f"tcp://127.0.0.1:{free_port()}")
    path = standin.write_config(config)
    log_path = tmp_path / "tbot.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(standin.exe), "start", "-c", str(path)],
            env=standin.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        daemon = Daemon(proc, log_path, diag_port=0)
        daemon.wait_for_log("All services are ready.")
        assert "diagnostics service" not in daemon.log
        assert daemon.stop() == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=LIMIT)


# --- tunnels ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", TUNNELS)
def test_tunnel_relays_each_connection_to_the_backend(
    standin: Standin, start_daemon: StartDaemon, echo: EchoServer, kind: str
) -> None:
    standin.env["STANDIN_TBOT_BACKEND"] = echo.hostport
    port = free_port()
    daemon = start_daemon(tunnel_config(kind, f"tcp://127.0.0.1:{port}"))
    daemon.poll("/wait", 200)

    assert echo_through(port, b"SELECT 1;\n") == b"SELECT 1;\n"
    big = bytes(range(256)) * 1024  # more than one read's worth
    assert echo_through(port, big) == big
    assert echo.connections == 2
    assert f"Listening for connections. service:{kind}-1 address:tcp://127.0.0.1:{port}" in (
        daemon.log
    )

    assert daemon.stop() == 0
    assert "Received signal, shutting down. signal:SIGTERM" in daemon.log
    assert refused(port)
    assert refused(daemon.diag_port)


def test_tunnel_on_a_unix_socket(
    standin: Standin, start_daemon: StartDaemon, echo: EchoServer, tmp_path: Path
) -> None:
    standin.env["STANDIN_TBOT_BACKEND"] = echo.hostport
    path = tmp_path / "db.sock"
    daemon = start_daemon(tunnel_config("database-tunnel", f"unix://{path}"))
    daemon.poll("/wait", 200)
    # A client in a child process: pytest-socket lets tests connect to TCP loopback only.
    client = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX); s.settimeout(20); s.connect(sys.argv[1])\n"
        "s.sendall(b'ping'); s.shutdown(socket.SHUT_WR); print(s.recv(16).decode())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", client, str(path)],
        capture_output=True,
        text=True,
        timeout=LIMIT,
        check=True,
    )
    assert result.stdout == "ping\n"
    assert echo.connections == 1
    assert daemon.stop() == 0
    assert not path.exists()  # removed on close, as Go does


def test_connections_wait_in_the_backlog_until_ready(
    standin: Standin, start_daemon: StartDaemon, echo: EchoServer
) -> None:
    standin.env.update(STANDIN_TBOT_BACKEND=echo.hostport, STANDIN_TBOT_READY_DELAY="1")
    port = free_port()
    daemon = start_daemon(tunnel_config("application-tunnel", f"tcp://127.0.0.1:{port}"))
    daemon.wait_for_log("Fetched new bot identity.")  # the listener is bound by now
    assert daemon.get("/wait")[0] == 503
    assert echo_through(port, b"early") == b"early"  # served once ready
    assert daemon.get("/wait")[0] == 200
    assert daemon.stop() == 0


def test_without_backend_connections_are_closed(
    standin: Standin, start_daemon: StartDaemon
) -> None:
    port = free_port()
    daemon = start_daemon(tunnel_config("application-proxy", f"tcp://127.0.0.1:{port}"))
    daemon.poll("/wait", 200)
    assert closed_by_peer(port)
    assert daemon.stop() == 0
    assert "tbot stand-in: no STANDIN_TBOT_BACKEND, closing connection." in daemon.log


def test_unreachable_backend_closes_the_connection(
    standin: Standin, start_daemon: StartDaemon
) -> None:
    standin.env["STANDIN_TBOT_BACKEND"] = f"127.0.0.1:{free_port()}"
    port = free_port()
    daemon = start_daemon(tunnel_config("database-tunnel", f"tcp://127.0.0.1:{port}"))
    daemon.poll("/wait", 200)
    assert closed_by_peer(port)
    assert daemon.stop() == 0
    assert " ERRO [TBOT]      Failed to handle connection." in daemon.log


# --- stopping -------------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_it_cleanly(
    standin: Standin, start_daemon: StartDaemon, signum: signal.Signals
) -> None:
    port = free_port()
    daemon = start_daemon(tunnel_config("database-tunnel", f"tcp://127.0.0.1:{port}"))
    daemon.poll("/wait", 200)
    assert daemon.stop(signum) == 0
    assert f"signal:{signum.name}" in daemon.log
    assert refused(port)


def test_a_signal_before_ready_stops_it_too(standin: Standin, start_daemon: StartDaemon) -> None:
    standin.env["STANDIN_TBOT_READY_DELAY"] = str(LIMIT * 2)
    daemon = start_daemon(tunnel_config("application-proxy", f"tcp://127.0.0.1:{free_port()}"))
    daemon.poll("/wait", 503)
    assert daemon.stop() == 0
    assert "All services are ready." not in daemon.log


@pytest.mark.parametrize(
    ("ready_delay", "lifetime", "was_ready"),
    [("0", "1", True), (str(LIMIT * 2), "0.5", False)],
    ids=["after-ready", "before-ready"],
)
def test_it_stops_by_itself_after_its_lifetime(
    standin: Standin,
    start_daemon: StartDaemon,
    ready_delay: str,
    lifetime: str,
    was_ready: bool,
) -> None:
    standin.env.update(STANDIN_TBOT_READY_DELAY=ready_delay, STANDIN_TBOT_MAX_LIFETIME=lifetime)
    port = free_port()
    daemon = start_daemon(tunnel_config("database-tunnel", f"tcp://127.0.0.1:{port}"))
    assert daemon.proc.wait(timeout=LIMIT) == 0
    assert f"tbot stand-in: lifetime limit reached, exiting. max_lifetime:{lifetime}s" in (
        daemon.log
    )
    assert ("All services are ready." in daemon.log) is was_ready
    assert refused(port)


# --- failing --------------------------------------------------------------------------------


@pytest.mark.parametrize("taken", ["listen", "diag"])
def test_a_taken_port_fails_like_tbot(
    standin: Standin, start_daemon: StartDaemon, taken: str
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = int(holder.getsockname()[1])
        listen_port = busy if taken == "listen" else free_port()
        config = tunnel_config("database-tunnel", f"tcp://127.0.0.1:{listen_port}")
        daemon = start_daemon(config, diag_port=busy if taken == "diag" else None)
        # The port is still held: it must be the daemon that gave up.
        assert daemon.proc.wait(timeout=LIMIT) == 1
    prefix = "opening listener: " if taken == "listen" else ""
    assert error_lines(daemon.log) == [
        f"ERROR: {prefix}listen tcp 127.0.0.1:{busy}: bind: address already in use"
    ]
    assert refused(daemon.diag_port if taken == "listen" else listen_port)


@pytest.mark.parametrize(
    ("listen", "message"),
    [
        (
            "tcp://127.0.0.1",
            "opening listener: listen tcp: address 127.0.0.1: missing port in address",
        ),
        ("http://127.0.0.1:8080", 'opening listener: unsupported scheme "http"'),
    ],
    ids=["no-port", "unsupported-scheme"],
)
def test_a_bad_listen_address_fails(standin: Standin, listen: str, message: str) -> None:
    result = standin.start(tunnel_config("application-proxy", listen), "--diag-addr", "127.0.0.1:9")
    assert result.returncode == 1
    assert error_lines(result.stderr) == [f"ERROR: {message}"]


def test_fail_knob_exits_before_ready(standin: Standin, start_daemon: StartDaemon) -> None:
    standin.env.update(
        STANDIN_TBOT_FAIL="failed to join: access denied", STANDIN_TBOT_EXIT_CODE="3"
    )
    daemon = start_daemon(tunnel_config("database-tunnel", f"tcp://127.0.0.1:{free_port()}"))
    assert daemon.proc.wait(timeout=LIMIT) == 3
    assert error_lines(daemon.log) == ["ERROR: failed to join: access denied"]
    assert "All services are ready." not in daemon.log


@pytest.mark.parametrize(
    ("knob", "value"),
    [
        ("STANDIN_TBOT_READY_DELAY", "soon"),
        ("STANDIN_TBOT_MAX_LIFETIME", "-1"),
        ("STANDIN_TBOT_BACKEND", "no-port"),
        ("STANDIN_TBOT_WAIT", "forever"),
    ],
)
def test_a_bad_knob_fails_before_starting(standin: Standin, knob: str, value: str) -> None:
    standin.env[knob] = value
    result = standin.start(tunnel_config("application-proxy", "tcp://127.0.0.1:1"))
    assert result.returncode == 1
    (error,) = error_lines(result.stderr)
    assert error.startswith(f"ERROR: tbot stand-in: {knob} ")


# --- outputs, telemetry and the record --------------------------------------------------------


def test_outputs_are_written_before_it_is_ready(
    standin: Standin, start_daemon: StartDaemon
) -> None:
    config = tunnel_config("application-tunnel", f"tcp://127.0.0.1:{free_port()}")
    config["outputs"] = [
        {"type": "kubernetes", "destination": directory(standin.out_dir), "kubernetes_cluster": "k"}
    ]
    daemon = start_daemon(config)
    daemon.poll("/wait", 200)
    assert (standin.out_dir / TBOT_KUBECONFIG_FILE).is_file()
    _, body = daemon.get("/readyz")
    assert set(json.loads(body)["services"]) == {"kubernetes-output-1", "application-tunnel-1"}
    assert daemon.stop() == 0


def test_telemetry_reports_a_daemon(
    standin: Standin, start_daemon: StartDaemon, collector: Collector
) -> None:
    endpoint = collector
    enable_telemetry(standin.env, endpoint)
    del standin.env["_TBOT_TELEMETRY_HELPER"]  # a helper version alone is not reported
    config = tunnel_config("database-tunnel", f"tcp://127.0.0.1:{free_port()}")
    config["onboarding"]["join_method"] = "token"
    for kind in TUNNELS[1:]:
        config["services"] += tunnel_config(kind, f"tcp://127.0.0.1:{free_port()}")["services"]
    daemon = start_daemon(config)
    daemon.poll("/wait", 200)
    assert daemon.stop() == 0
    (start,) = endpoint.starts()
    assert start == tbot_pb2.TbotStartEvent(
        run_mode=tbot_pb2.TbotStartEvent.RUN_MODE_DAEMON,
        version=VERSION,
        join_type="token",
        # tbot counts outputs only: services leave every counter at 0.
    )


def test_record_is_written_when_it_exits(standin: Standin, start_daemon: StartDaemon) -> None:
    standin.env["STANDIN_TBOT_RECORD"] = str(standin.record_path)
    config = tunnel_config("application-proxy", f"tcp://127.0.0.1:{free_port()}")
    daemon = start_daemon(config)
    daemon.poll("/wait", 200)
    assert not standin.record_path.exists()
    assert daemon.stop() == 0
    (entry,) = standin.records()
    assert entry["argv"] == [
        "start",
        "-c",
        str(standin.config_path),
        "--diag-addr",
        f"127.0.0.1:{daemon.diag_port}",
    ]
    assert entry["config"] == config


# --- the echo server -------------------------------------------------------------------------


def test_echo_server_stops_by_itself() -> None:
    server = EchoServer(exit_after=0.2).start()
    assert server.wait(LIMIT)
    assert refused(server.port)


def test_echo_server_as_a_process(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    script = Path(__file__).with_name("echo_server.py")
    proc = subprocess.Popen(
        [sys.executable, str(script), "--port-file", str(port_file), "--exit-after", "3"]
    )
    try:
        deadline = time.monotonic() + LIMIT
        while not port_file.exists():
            assert time.monotonic() < deadline
            assert proc.poll() is None
            time.sleep(0.05)
        assert echo_through(int(port_file.read_text()), b"hello") == b"hello"
        assert proc.wait(timeout=LIMIT) == 0  # gone by itself after --exit-after
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=LIMIT)
