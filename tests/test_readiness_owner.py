"""Readiness is our tbot's: an answer on the diag port from another process does not count."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from conftest import Job
from echo_server import free_port
from teleport_auth import daemon, listener
from teleport_auth.config import build_config, private_dir, write_config
from teleport_auth.family import member, tunnels
from teleport_auth.inputs import env_name, read_inputs
from teleport_auth.main import main

pytestmark = pytest.mark.step


class _Always200(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def other_diag_service() -> Iterator[int]:
    """Another process's diagnostics service (here: this test's), ready on 127.0.0.1:<port>."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Always200)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_a_listener_of_this_process_is_held_by_it_and_no_other() -> None:
    with socket.create_server(("127.0.0.1", 0)) as mine:
        port = mine.getsockname()[1]
        assert listener.held_by_session(os.getpid(), port) is True
        other = subprocess.Popen(["sleep", "30"], start_new_session=True)
        try:
            assert listener.held_by_session(other.pid, port) is False
        finally:
            other.kill()
            other.wait()
    assert listener.held_by_session(os.getpid(), port) is False  # nobody listens now


def test_a_process_started_by_tbot_holds_it_for_tbot() -> None:
    # A wrapper script that runs tbot as its child (no exec): tbot's session holds the port.
    script = (
        "import socket, sys; s = socket.create_server(('127.0.0.1', 0)); "
        "print(s.getsockname()[1], flush=True); sys.stdin.read()"
    )
    wrapper = subprocess.Popen(
        ["sh", "-c", f'"$0" -c "{script}"; :', sys.executable],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert wrapper.stdout is not None
        port = int(wrapper.stdout.readline())
        assert listener.held_by_session(wrapper.pid, port) is True
    finally:
        wrapper.kill()
        wrapper.communicate(timeout=10)


def fake_proc(root: Path, tcp: str, tcp6: str, fds: dict[int, list[int]]) -> Path:
    """A /proc with the given socket tables and processes (each in its own session)."""
    (root / "net").mkdir(parents=True)
    head = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
    (root / "net" / "tcp").write_text(head + "timeout inode\n" + tcp)
    (root / "net" / "tcp6").write_text(head + "timeout inode\n" + tcp6)
    for pid, inodes in fds.items():
        (root / str(pid) / "fd").mkdir(parents=True)
        (root / str(pid) / "stat").write_text(f"{pid} (tbot) S 1 {pid} {pid} 0 -1\n")
        for number, inode in enumerate(inodes):
            os.symlink(f"socket:[{inode}]", root / str(pid) / "fd" / str(number))
    return root


def _row(address: str, port: int, state: str, inode: int) -> str:
    rest = "00000000:0000 " + state + " 00000000:00000000 00:00000000 00000000     0        0 "
    return f"   0: {address}:{port:04X} {rest}{inode} 1 0000000000000000 100 0 0 10 0\n"


def _hex(address: str) -> str:
    """An address as /proc/net/tcp{,6} write it: each 32-bit word in host byte order."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    packed = socket.inet_pton(family, address)
    return "".join(f"{word:08X}" for word in struct.unpack(f"={len(packed) // 4}I", packed))


@pytest.mark.parametrize(
    ("table", "address", "reaches"),
    [
        ("tcp", "127.0.0.1", True),
        ("tcp", "0.0.0.0", True),
        ("tcp", "127.0.0.2", False),
        ("tcp6", "::", True),
        ("tcp6", "::ffff:127.0.0.1", True),
        ("tcp6", "::1", False),
    ],
)
def test_the_socket_tables_are_read_as_the_kernel_writes_them(
    tmp_path: Path, table: str, address: str, reaches: bool
) -> None:
    encoded = _hex(address)
    rows = _row(encoded, 57263, "0A", 111) + _row(encoded, 57263, "01", 222)  # 01: established
    proc = fake_proc(
        tmp_path,
        rows if table == "tcp" else "",
        rows if table == "tcp6" else "",
        {4242: [111, 222], 4343: [333]},
    )
    assert listener.listening_inodes(57263, proc) == ({111} if reaches else set())
    assert listener.listening_inodes(57264, proc) == set()
    assert listener.held_by_session(4242, 57263, proc) is reaches
    assert listener.held_by_session(4343, 57263, proc) is False


def test_without_proc_it_cannot_tell(tmp_path: Path) -> None:
    assert listener.held_by_session(1, 57263, tmp_path) is None


def daemon_config(job: Job, diag_port: int) -> Path:
    """application-proxy's config, written as the step writes it."""
    job.env |= {
        env_name("listen"): f"tcp://127.0.0.1:{free_port()}",
        env_name("diag-port"): str(diag_port),
    }
    found = member("application-proxy")
    assert found is not None
    own = found.read(job.env)
    config = build_config(read_inputs(job.env), own, job.root, oneshot=False)
    return write_config(config, private_dir(job.root))


def not_ready(
    job: Job, tbot: str, config: Path, diag_port: int, timeout_ms: int
) -> tuple[daemon.RunningTbot, daemon.NotReady]:
    """Start ``tbot`` as a daemon member does, wait for readiness, which must fail."""
    running = daemon.start(
        tbot, config, job.env, diag_addr=f"127.0.0.1:{diag_port}", log_dir=job.root, debug=False
    )
    try:
        with pytest.raises(daemon.NotReady) as caught:
            daemon.wait_ready(running, timeout_ms)
    finally:
        daemon.stop(running)
    return running, caught.value


def test_an_answer_from_another_process_is_not_readiness(
    job: Job, other_diag_service: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The other service took the port between the step's check and tbot's bind.
    monkeypatch.setattr(tunnels, "port_is_free", lambda host, port: True)
    job.env["STANDIN_TBOT_VERSION"] = "18.6.4"
    running, failure = not_ready(
        job, "tbot", daemon_config(job, other_diag_service), other_diag_service, 20000
    )
    # Our tbot could not bind the port, and exited; the other answer is named.
    assert failure.message == (
        "tbot exited with code 1 before it was ready; another process answers on "
        f"127.0.0.1:{other_diag_service} (diag-port)"
    )
    assert "bind: address already in use" in running.log_path.read_text()


def test_the_step_fails_and_publishes_no_tbot(
    job: Job,
    other_diag_service: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(tunnels, "port_is_free", lambda host, port: True)
    job.env |= {
        "STANDIN_TBOT_VERSION": "18.6.4",
        env_name("listen"): f"tcp://127.0.0.1:{free_port()}",
        env_name("diag-port"): str(other_diag_service),
    }
    code = main(["application-proxy"])
    log = capsys.readouterr().out
    assert code == 1
    assert [line for line in log.splitlines() if line.startswith("::error")] == [
        "::error::tbot exited with code 1 before it was ready; another process answers on "
        f"127.0.0.1:{other_diag_service} (diag-port)"
    ]
    # As for any failed start: only the kept log's path and the diagnostics address.
    assert set(job.outputs) == {"log-path", "diag-addr"}
    assert job.runner_temp_entries() == [Path(job.outputs["log-path"]).parent]


def test_a_tbot_that_never_listens_is_not_ready(job: Job, other_diag_service: int) -> None:
    # It keeps running, but the one answering is someone else: not ready, until timeout-ms.
    fake_tbot = job.root / "quiet-tbot"
    fake_tbot.write_text("#!/bin/sh\nexec sleep 60\n")
    fake_tbot.chmod(0o755)
    _, failure = not_ready(job, str(fake_tbot), job.root / "unused.yaml", other_diag_service, 1000)
    assert failure.message == (
        "tbot was not ready within 1000 ms (input 'timeout-ms', default 30000); raise it if "
        "tbot needs longer to join and start its service; another process answers on "
        f"127.0.0.1:{other_diag_service} (diag-port)"
    )
