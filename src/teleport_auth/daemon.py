"""tbot in the background, for the daemon members: start it detached, wait until it is ready.

tbot is started in its own Unix session and process group (as ``setsid``
does): it outlives the step, and a signal sent to the step or its process
group does not reach it; the member's end-of-job step stops it when the job
ends (:mod:`teleport_auth.end_of_job`). Its output goes to a private log file.
Readiness is asked of its diagnostics service (``GET /wait``: 200 once every
service is ready), every 250 ms as the original does, until ``timeout-ms`` runs
out or tbot exits. An answer counts only if our tbot holds the port and still
runs (``teleport_auth.listener``): another process may have taken it after the
step checked it was free.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from teleport_auth import listener
from teleport_auth.gha import ActionFailure
from teleport_auth.procfs import start_ticks
from teleport_auth.tbot import describe_exit

POLL_SECONDS = 0.25
# How long a stopped tbot gets to exit on SIGTERM before it is killed.
STOP_GRACE_SECONDS = 5.0
# With timeout-ms 0 the step still waits this long at most for the diagnostics
# service to answer at all (tbot has read its config by then), to remove the config.
CONFIG_READ_SECONDS = 10.0
LOG_NAME = "tbot.log"
# The originals' default for the input 'timeout-ms', named in the timeout error.
DEFAULT_TIMEOUT_MS = 30000


class NotReady(ActionFailure):
    """tbot exited or ran out of time before it was ready; it has been stopped."""


class RunningTbot:
    """The tbot a daemon member started: its process, log and diagnostics address."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        log_path: Path,
        diag_addr: str,
        start_ticks: int | None = None,
    ) -> None:
        self.process = process
        self.log_path = log_path
        self.diag_addr = diag_addr
        # Its start time since boot (None if unreadable): tells it from a later process
        # given the same pid, when the end-of-job step comes to stop it.
        self.start_ticks = start_ticks

    @property
    def pid(self) -> int:
        return self.process.pid


def start(
    tbot: str,
    config_path: Path,
    env: Mapping[str, str],
    *,
    diag_addr: str,
    log_dir: Path,
    debug: bool,
) -> RunningTbot:
    """``tbot start -c CONFIG --diag-addr ADDR`` detached, its output in ``log_dir/tbot.log``."""
    argv = [tbot, "start", "-c", str(config_path), "--diag-addr", diag_addr]
    if debug:
        argv.append("--debug")
    log_path = log_dir / LOG_NAME
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_APPEND | os.O_CLOEXEC
    log_fd = os.open(log_path, flags, 0o600)
    try:
        process = subprocess.Popen(
            argv,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            close_fds=True,
            # Its own session and process group: it outlives the step and its signals.
            start_new_session=True,
        )
    except OSError as exc:
        raise ActionFailure(f"Could not start tbot: {exc}") from None
    finally:
        os.close(log_fd)
    return RunningTbot(process, log_path, diag_addr, start_ticks(process.pid))


def _get(diag_addr: str, path: str, timeout: float) -> int | None:
    """The HTTP status of ``GET http://ADDR/PATH``, or None if nothing answered."""
    host, _, port = diag_addr.rpartition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=max(timeout, 0.05))
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read(1024)
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def _exited(daemon: RunningTbot, seconds: float) -> bool:
    """Wait up to ``seconds`` for tbot to exit (the poll interval); True if it did."""
    try:
        daemon.process.wait(timeout=max(seconds, 0))
    except subprocess.TimeoutExpired:
        return False
    return True


def _exit_reason(running: RunningTbot) -> str:
    code = running.process.returncode
    return describe_exit(code, exited="exited with code") if code is not None else "is running"


def _answered_by_ours(daemon: RunningTbot) -> bool:
    """After an answer on the diag port: it came from our tbot, which still runs.

    Another process may have taken the port after the step checked it was free.
    """
    port = int(daemon.diag_addr.rpartition(":")[2])
    return listener.held_by_session(daemon.pid, port) is not False and daemon.process.poll() is None


def wait_ready(daemon: RunningTbot, timeout_ms: int) -> float:
    """Seconds until ``/wait`` said 200; raises NotReady (after stopping tbot) otherwise."""
    started = time.monotonic()
    deadline = started + timeout_ms / 1000
    other = ""  # said when another process answered in tbot's place
    while True:
        if daemon.process.poll() is not None:
            raise NotReady(f"tbot {_exit_reason(daemon)} before it was ready{other}")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            stop(daemon)
            raise NotReady(
                f"tbot was not ready within {timeout_ms} ms (input 'timeout-ms', default "
                f"{DEFAULT_TIMEOUT_MS}); raise it if tbot needs longer to join and start its "
                f"service{other}"
            )
        if _get(daemon.diag_addr, "/wait", min(remaining, 1.0)) == 200:
            if _answered_by_ours(daemon):
                return time.monotonic() - started
            other = f"; another process answers on {daemon.diag_addr} (diag-port)"
        if _exited(daemon, min(POLL_SECONDS, deadline - time.monotonic())):
            raise NotReady(f"tbot {_exit_reason(daemon)} before it was ready{other}")


def wait_config_read(daemon: RunningTbot) -> bool:
    """With no readiness wait: until the diagnostics service answers at all (bounded)."""
    deadline = time.monotonic() + CONFIG_READ_SECONDS
    while time.monotonic() < deadline:
        if daemon.process.poll() is not None:
            raise NotReady(f"tbot {_exit_reason(daemon)} right after it started")
        if _get(daemon.diag_addr, "/livez", 1.0) is not None and _answered_by_ours(daemon):
            return True
        if _exited(daemon, POLL_SECONDS):
            raise NotReady(f"tbot {_exit_reason(daemon)} right after it started")
    return False


def stop(daemon: RunningTbot) -> None:
    """SIGTERM to tbot's process group, at most STOP_GRACE_SECONDS, then SIGKILL."""
    if daemon.process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(daemon.pid, signal.SIGTERM)
    if _exited(daemon, STOP_GRACE_SECONDS):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(daemon.pid, signal.SIGKILL)
    daemon.process.wait()
