"""A daemon member's end of the job: stop the tbot its step started, then show its whole log.

The runner runs this from the post step of the nested ``end-of-job`` action
(``src/run_end_of_job.py``), with what the step saved in the environment. It
must never fail the job: whatever goes wrong here is at most a warning. The
saved process id is only acted on while it still names the very process the
step started (same start time since boot): a pid reused by another process is
left alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import time
from collections.abc import Mapping
from pathlib import Path

from teleport_auth import gha, tbot_log
from teleport_auth.procfs import start_ticks
from teleport_auth.record import Record

STATE_ENV = "TELEPORT_AUTH_END_OF_JOB"
# tbot gets this long to exit on SIGTERM (as the step gives it), then SIGKILL.
GRACE_SECONDS = 5.0
KILL_WAIT_SECONDS = 2.0
# Only where pidfd is unavailable: how often /proc is looked at while waiting.
_POLL_SECONDS = 0.02


class State(Record):
    """What the step saved for the end of the job."""

    __slots__ = ("log_path", "member", "pid", "start")

    def __init__(self, member: str, pid: int, start: int | None, log_path: Path) -> None:
        self.member = member
        self.pid = pid
        # The process's start time (clock ticks since boot), None if it could not be read.
        self.start = start
        self.log_path = log_path

    def to_text(self) -> str:
        return json.dumps(
            {"member": self.member, "pid": self.pid, "start": self.start, "log": str(self.log_path)}
        )

    @classmethod
    def from_text(cls, text: str) -> State:
        """Raises ValueError for anything but what :meth:`to_text` writes."""
        try:
            data = json.loads(text)
        except ValueError:
            raise ValueError("the saved state is not JSON") from None
        if not isinstance(data, dict):
            raise ValueError("the saved state is not an object")
        member, pid, start, log = (data.get(k) for k in ("member", "pid", "start", "log"))
        if not isinstance(member, str) or not isinstance(log, str) or not log:
            raise ValueError("the saved state lacks the member or the log path")
        if type(pid) is not int or pid <= 1:
            raise ValueError(f"the saved process id is not usable ({pid!r})")
        if start is not None and type(start) is not int:
            raise ValueError(f"the saved start time is not a number ({start!r})")
        return cls(member, pid, start, Path(log))


def _pidfd(pid: int) -> int | None:
    """A pidfd for ``pid`` (signals and waits without any pid-reuse race), None if unsupported."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        fd: int = opener(pid)
    except ProcessLookupError:
        raise
    except OSError:
        return None  # e.g. an old kernel or a seccomp profile without it
    return fd


def _wait_gone(pid: int, start: int, fd: int | None, seconds: float) -> bool:
    """Wait (at most ``seconds``) until the process has exited; True if it has."""
    if fd is not None:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(int(seconds * 1000)))
    deadline = time.monotonic() + seconds
    while start_ticks(pid) == start:
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_SECONDS)
    return True


def _send(pid: int, fd: int | None, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        if fd is not None:
            signal.pidfd_send_signal(fd, signum)
        else:
            os.kill(pid, signum)


def stop(state: State) -> str:
    """Stop the step's tbot if it still runs; returns what happened, as a log line."""
    who = f"tbot (pid {state.pid})"
    if state.start is None:
        return f"{who}: its start time was not recorded, so it is left alone."
    try:
        fd = _pidfd(state.pid)
    except ProcessLookupError:
        return f"{who} had already exited."
    try:
        # Checked after the pidfd is open: from here on the pidfd names this very process.
        now = start_ticks(state.pid)
        if now is None:
            return f"{who} had already exited."
        if now != state.start:
            return f"{who} had already exited; that pid is now another process, left alone."
        started = time.monotonic()
        _send(state.pid, fd, signal.SIGTERM)
        if _wait_gone(state.pid, state.start, fd, GRACE_SECONDS):
            return f"Stopped {who} after {(time.monotonic() - started) * 1000:.0f} ms."
        _send(state.pid, fd, signal.SIGKILL)
        if _wait_gone(state.pid, state.start, fd, KILL_WAIT_SECONDS):
            return f"{who} did not exit within {GRACE_SECONDS:g} s of SIGTERM: killed."
        return f"{who} did not exit even on SIGKILL."
    finally:
        if fd is not None:
            os.close(fd)


def main(env: Mapping[str, str]) -> int:
    """Always 0: cleanup trouble is a warning, never a failed job."""
    try:
        state = State.from_text(env.get(STATE_ENV, ""))
    except ValueError as exc:
        gha.warning(f"teleport-actions/auth end of job: {exc}; nothing to stop or show.")
        return 0
    try:
        gha.info(f"teleport-actions/auth/{state.member}: {stop(state)}")
        tbot_log.show(state.log_path, f"tbot log ({state.member}, pid {state.pid})")
    except Exception as exc:  # a bug here must not fail the job
        gha.warning(f"teleport-actions/auth/{state.member} end of job: {type(exc).__name__}: {exc}")
    return 0
