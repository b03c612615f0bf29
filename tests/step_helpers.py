"""Helpers for the tests that run the step in-process, and for the stand-in daemons it starts.

Every run of the step through :func:`run_step` reads what it printed to stdout
AND stderr, and checks that the join token appears nowhere in it (nor in the job
summary), and that nothing is registered as a secret.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from pathlib import Path

import pytest

from conftest import Job, assert_token_never_printed, gone_within, standin_daemons
from teleport_auth.main import main

# Generous bounds for a loaded machine; nothing waits this long when all is well.
LIMIT = 20.0


def run_step(capsys: pytest.CaptureFixture[str], argv: list[str] | None = None) -> tuple[int, str]:
    """The step in-process (``argv``: the member's name, none for auth): its exit code and log."""
    code = main(argv or [])
    captured = capsys.readouterr()
    log = captured.out + captured.err
    assert_token_never_printed(log)
    return code, log


def errors(log: str) -> list[str]:
    return [line for line in log.splitlines() if line.startswith("::error")]


def warnings(log: str) -> list[str]:
    return [line for line in log.splitlines() if line.startswith("::warning")]


# --- the stand-in tbot as a daemon ---------------------------------------------------


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def stop_daemon(pid: int) -> None:
    """Stop a tunnel as the README says: kill <tbot-pid>; wait (bounded) until it is gone.

    If the step ran in this process, tbot is its child: it is reaped here too.
    """
    os.kill(pid, signal.SIGTERM)
    assert gone_within(pid, LIMIT)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def daemons_of(job: Job) -> list[int]:
    """The stand-in tbots still alive that this job started (its RUNNER_TEMP is in their argv)."""
    mine = []
    for pid in standin_daemons():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if job.env["RUNNER_TEMP"].encode() in cmdline:
            mine.append(pid)
    return mine


def echo_through(port: int, payload: bytes) -> bytes:
    """Send ``payload`` to 127.0.0.1:``port``, half-close, and read everything that comes back."""
    with socket.create_connection(("127.0.0.1", port), timeout=LIMIT) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks)
