"""tbot in the background, unit by unit: started detached, waited for, stopped.

A small fake tbot stands in (FAKE_TBOT below): it records how it was started,
serves ``/wait`` and ``/livez`` on its ``--diag-addr`` as FAKE_MODE says, and
stops by itself after a minute should a test lose it.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import itertools
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, cast

import pytest

from echo_server import free_port
from step_helpers import LIMIT, alive
from teleport_auth import daemon
from teleport_auth.daemon import NotReady, RunningTbot
from teleport_auth.gha import ActionFailure

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

FAKE_TBOT = """
import http.server, json, os, signal, subprocess, sys, threading, time

argv = sys.argv[1:]
mode = os.environ.get("FAKE_MODE", "ready")
child = subprocess.Popen(["sleep", "60"])  # in tbot's process group, as its helpers are
with open(os.environ["FAKE_RECORD"], "w") as f:
    json.dump({"argv": argv, "pid": os.getpid(), "sid": os.getsid(0), "child": child.pid,
               "stdin": os.readlink("/proc/self/fd/0")}, f)
print("fake tbot: on stdout", flush=True)
print("fake tbot: on stderr", file=sys.stderr, flush=True)
if mode == "exit":
    sys.exit(int(os.environ.get("FAKE_EXIT", "3")))
if mode == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
started = time.monotonic()
ready_after = float(os.environ.get("FAKE_READY_AFTER", "0"))

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/livez":
            status = 200
        elif self.path == "/wait":
            ready = mode != "never" and time.monotonic() - started >= ready_after
            status = 200 if ready else 503
        else:
            status = 404
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass

if mode != "silent":
    host, port = argv[argv.index("--diag-addr") + 1].rsplit(":", 1)
    server = http.server.HTTPServer((host, int(port)), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
time.sleep(60)
"""


@pytest.fixture
def fake_tbot(tmp_path: Path) -> Path:
    path = tmp_path / "tbot"
    path.write_text(f"#!{sys.executable}\n{FAKE_TBOT}")
    path.chmod(0o755)
    return path


class Started:
    """The daemons a test started, ended at its end, and their records."""

    def __init__(self, tbot: Path, tmp_path: Path) -> None:
        self.tbot = tbot
        self.tmp = tmp_path
        self.daemons: list[RunningTbot] = []

    def __call__(
        self, mode: str = "ready", *, debug: bool = False, port: int = 0, **env: str
    ) -> RunningTbot:
        log_dir = self.tmp / f"log-{len(self.daemons)}"
        log_dir.mkdir(mode=0o700)
        record = self.tmp / f"record-{len(self.daemons)}.json"
        environment = dict(os.environ, FAKE_MODE=mode, FAKE_RECORD=str(record), **env)
        started = daemon.start(
            str(self.tbot),
            self.tmp / "config.yaml",
            environment,
            diag_addr=f"127.0.0.1:{port or free_port()}",
            log_dir=log_dir,
            debug=debug,
        )
        self.daemons.append(started)
        return started

    def record(self, started: RunningTbot) -> dict[str, object]:
        path = self.tmp / f"record-{self.daemons.index(started)}.json"
        deadline = time.monotonic() + LIMIT
        while not (path.exists() and path.read_text().endswith("}")):
            assert time.monotonic() < deadline, "the fake tbot never recorded its start"
            time.sleep(0.02)
        found: dict[str, object] = json.loads(path.read_text())
        return found


@pytest.fixture
def start(fake_tbot: Path, tmp_path: Path) -> Iterator[Started]:
    started = Started(fake_tbot, tmp_path)
    yield started
    for each in started.daemons:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(each.pid, signal.SIGKILL)
        each.process.wait(timeout=LIMIT)


def gone(pid: int) -> bool:
    """Whether ``pid`` has ended, waited for (bounded): a signalled process takes a moment."""
    deadline = time.monotonic() + LIMIT
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not alive(pid)


def wait_for_log(started: RunningTbot, text: str) -> str:
    deadline = time.monotonic() + LIMIT
    while text not in (log := started.log_path.read_text()):
        assert time.monotonic() < deadline, log
        time.sleep(0.02)
    return log


@pytest.mark.parametrize("debug", [False, True])
def test_tbot_runs_detached_with_its_output_in_a_private_log(
    start: Started, tmp_path: Path, debug: bool
) -> None:
    started = start(debug=debug)
    record = start.record(started)
    config = str(tmp_path / "config.yaml")
    want = ["start", "-c", config, "--diag-addr", started.diag_addr]
    assert record["argv"] == [*want, "--debug"] if debug else want
    # Its own session and process group, so the step's signals do not reach it.
    assert record["pid"] == record["sid"] == started.pid == os.getpgid(started.pid)
    assert record["stdin"] == "/dev/null"
    assert started.log_path == tmp_path / "log-0" / "tbot.log"
    assert stat.S_IMODE(started.log_path.stat().st_mode) == 0o600
    log = wait_for_log(started, "fake tbot: on stderr")
    assert "fake tbot: on stdout" in log


def test_the_log_is_never_an_existing_file_or_symlink(fake_tbot: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("kept\n")
    (tmp_path / "tbot.log").symlink_to(target)
    with pytest.raises(FileExistsError):
        daemon.start(
            str(fake_tbot), tmp_path / "c.yaml", {}, diag_addr="127.0.0.1:9", log_dir=tmp_path,
            debug=False,
        )  # fmt: skip
    assert target.read_text() == "kept\n"


def test_a_tbot_that_cannot_start_is_one_clear_failure(tmp_path: Path) -> None:
    missing = tmp_path / "no-tbot"
    with pytest.raises(ActionFailure) as caught:
        daemon.start(
            str(missing), tmp_path / "c.yaml", {}, diag_addr="127.0.0.1:9", log_dir=tmp_path,
            debug=False,
        )  # fmt: skip
    assert caught.value.message.startswith("Could not start tbot: ")
    assert str(missing) in caught.value.message
    # The log file was opened for it, and closed again.
    assert not [fd for fd in os.listdir("/proc/self/fd") if _points_at(fd, tmp_path / "tbot.log")]


def _points_at(fd: str, path: Path) -> bool:
    with contextlib.suppress(OSError):
        return os.readlink(f"/proc/self/fd/{fd}") == str(path)
    return False


def test_ready_when_wait_says_200(start: Started) -> None:
    started = start(FAKE_READY_AFTER="0.6")
    seconds = daemon.wait_ready(started, 20_000)
    assert 0.6 <= seconds < LIMIT
    assert started.process.poll() is None


def test_exiting_before_ready_says_how(start: Started) -> None:
    started = start("exit")
    with pytest.raises(NotReady) as caught:
        daemon.wait_ready(started, 20_000)
    assert caught.value.message == "tbot exited with code 3 before it was ready"


def test_killed_before_ready_says_by_which_signal(start: Started) -> None:
    started = start("silent")
    start.record(started)
    os.kill(started.pid, signal.SIGKILL)
    with pytest.raises(NotReady) as caught:
        daemon.wait_ready(started, 20_000)
    assert caught.value.message == "tbot was killed by SIGKILL before it was ready"


def test_not_ready_in_time_stops_tbot(start: Started) -> None:
    started = start("never")
    record = start.record(started)
    begun = time.monotonic()
    with pytest.raises(NotReady) as caught:
        daemon.wait_ready(started, 700)
    assert time.monotonic() - begun >= 0.7
    assert caught.value.message == (
        "tbot was not ready within 700 ms (input 'timeout-ms', default 30000); raise it if "
        "tbot needs longer to join and start its service"
    )
    assert started.process.returncode == -signal.SIGTERM
    assert gone(int(str(record["child"])))


def test_the_readiness_wait_asks_every_poll_interval(
    start: Started, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[float] = []
    get = daemon._get

    def counted(diag_addr: str, path: str, timeout: float) -> int | None:
        asked.append(time.monotonic())
        return get(diag_addr, path, timeout)

    monkeypatch.setattr(daemon, "_get", counted)
    started = start(FAKE_READY_AFTER="1.5")
    # Ready within a poll of the moment it is (5 s: slack for a loaded machine).
    assert daemon.wait_ready(started, 20_000) < 1.5 + 5
    gaps = [later - earlier for earlier, later in itertools.pairwise(asked)]
    assert len(gaps) >= 2
    assert min(gaps) >= daemon.POLL_SECONDS * 0.9


def test_the_config_is_read_once_the_diagnostics_service_answers(start: Started) -> None:
    started = start("never")
    assert daemon.wait_config_read(started) is True
    assert started.process.poll() is None


def test_exiting_right_after_the_start_says_how(start: Started) -> None:
    started = start("exit")
    with pytest.raises(NotReady) as caught:
        daemon.wait_config_read(started)
    assert caught.value.message == "tbot exited with code 3 right after it started"


def test_a_silent_diagnostics_service_is_waited_for_a_bounded_time(
    start: Started, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(daemon, "CONFIG_READ_SECONDS", 0.6)
    started = start("silent")
    begun = time.monotonic()
    assert daemon.wait_config_read(started) is False
    assert 0.6 <= time.monotonic() - begun < LIMIT
    assert started.process.poll() is None


def test_stop_ends_tbots_whole_process_group(start: Started) -> None:
    started = start()
    record = start.record(started)
    daemon.stop(started)
    assert started.process.returncode == -signal.SIGTERM
    assert gone(int(str(record["child"])))
    daemon.stop(started)  # once it has exited: nothing more to do


def test_a_tbot_that_ignores_sigterm_is_killed_after_the_grace(
    start: Started, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(daemon, "STOP_GRACE_SECONDS", 0.5)
    started = start("ignore-term")
    record = start.record(started)
    begun = time.monotonic()
    daemon.stop(started)
    assert time.monotonic() - begun >= 0.5
    assert started.process.returncode == -signal.SIGKILL
    assert gone(int(str(record["child"])))


def test_the_diagnostics_answer_or_none() -> None:
    assert daemon._get(f"127.0.0.1:{free_port()}", "/wait", 1.0) is None


def test_exiting_with_zero_before_ready_is_no_signal(start: Started) -> None:
    started = start("exit", FAKE_EXIT="0")
    with pytest.raises(NotReady) as caught:
        daemon.wait_ready(started, 20_000)
    assert caught.value.message == "tbot exited with code 0 before it was ready"


class Process:
    """Stands in for tbot's Popen: its exit code, and the waits asked of it."""

    def __init__(self, returncode: int | None) -> None:
        self.returncode = returncode
        self.waits: list[float] = []

    def wait(self, timeout: float) -> int:
        self.waits.append(timeout)
        if self.returncode is None:
            raise subprocess.TimeoutExpired("tbot", timeout)
        return self.returncode


def _daemon(process: Process) -> RunningTbot:
    return RunningTbot(
        cast("subprocess.Popen[bytes]", process), Path("/nonexistent"), "127.0.0.1:9"
    )


def test_an_unknown_signal_is_named_by_its_number() -> None:
    assert daemon._exit_reason(_daemon(Process(-200))) == "was killed by signal 200"
    assert daemon._exit_reason(_daemon(Process(-9))) == "was killed by SIGKILL"
    assert daemon._exit_reason(_daemon(Process(0))) == "exited with code 0"
    assert daemon._exit_reason(_daemon(Process(None))) == "is running"


def test_waiting_for_an_exit_is_bounded_by_what_is_left() -> None:
    running, ended = Process(None), Process(1)
    assert daemon._exited(_daemon(running), -0.5) is False
    assert daemon._exited(_daemon(running), 0.2) is False
    assert daemon._exited(_daemon(ended), 0.2) is True
    assert running.waits == [0, 0.2]


class Connection:
    """Stands in for http.client.HTTPConnection: records how it was made and used."""

    made: ClassVar[list[tuple[str, int, float]]] = []
    reads: ClassVar[list[int | None]] = []

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.made.append((host, port, timeout))

    def request(self, method: str, path: str) -> None:
        assert (method, path) == ("GET", "/wait")

    def getresponse(self) -> Connection:
        return self

    def read(self, amount: int | None = None) -> bytes:
        self.reads.append(amount)
        return b""

    status = 200

    def close(self) -> None:
        pass


def test_a_diagnostics_request_is_bounded_in_time_and_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http.client, "HTTPConnection", Connection)
    Connection.made.clear()
    Connection.reads.clear()
    assert daemon._get("127.0.0.1:57263", "/wait", 0.001) == 200
    assert daemon._get("127.0.0.1:57263", "/wait", 0.5) == 200
    assert Connection.made == [("127.0.0.1", 57263, 0.05), ("127.0.0.1", 57263, 0.5)]
    assert Connection.reads == [1024, 1024]


def test_an_answer_from_another_process_is_not_tbots(
    start: Started, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Something else took the diagnostics port: its answers do not say tbot read its config.
    monkeypatch.setattr(daemon, "CONFIG_READ_SECONDS", 0.6)
    with http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler) as other:
        threading.Thread(target=other.serve_forever, daemon=True).start()
        try:
            started = start("silent", port=other.server_address[1])
            assert daemon.wait_config_read(started) is False
        finally:
            other.shutdown()
