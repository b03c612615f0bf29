"""Running tbot: cancellation by signal, and output that must not hold the step.

The cancellation tests run the whole step as the launcher does (``python -I -S
-X utf8 src/run_action.py``) in a session of its own, with a fake tbot that
records what it is sent, and signal the step's process alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import REPO, Job
from step_helpers import errors
from teleport_auth import tbot
from teleport_auth.relay import CONTINUED, PIECE_CHARS
from teleport_auth.tbot import run_start

# A fake tbot for exact control. `tbot version` answers at once; `tbot start`
# does what FAKE_TBOT_MODE says and appends JSON lines to FAKE_TBOT_RECORD.
FAKE_TBOT = """\
import json, os, signal, subprocess, sys, time

def record(**entry):
    with open(os.environ["FAKE_TBOT_RECORD"], "a") as f:
        f.write(json.dumps(entry) + "\\n")

mode = os.environ.get("FAKE_TBOT_MODE", "wait")
if sys.argv[1:2] == ["version"]:
    if mode == "slow-version":
        record(event="version", pid=os.getpid())
        print("tbot version: thinking", flush=True)
        signal.pause()
    print("Teleport v16.4.2 git:v16.4.2-0-g1 go1.22.5")
    sys.exit(0)

config = sys.argv[sys.argv.index("-c") + 1]
record(event="start", pid=os.getpid(), config=config, config_exists=os.path.exists(config))

if mode in ("wait", "ignore"):
    # Taken with sigwait, not a handler: nothing runs in the middle of a print.
    signals = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    print("tbot: waiting", flush=True)
    while True:
        name = signal.Signals(signal.sigwait(signals)).name
        record(event="signal", name=name)
        if mode == "ignore":
            print(f"tbot: ignoring {name}", flush=True)  # after the record: a test waits for it
            continue
        print(f"tbot: got {name}, shutting down", flush=True)
        sys.exit(0)  # a clean exit: the step must still fail and publish nothing
elif mode == "grandchild":
    # It inherits stdout and stderr: the step's pipe stays open after tbot exits.
    child = subprocess.Popen(["sleep", "300"])
    record(event="grandchild", pid=child.pid)
    print("tbot: done, leaving a process behind", flush=True)
    record(event="exit", time=time.time())
elif mode == "long-line":
    unit = "tbot::\\u00e9-".encode()
    chunk = unit * ((1 << 20) // len(unit))
    out = sys.stdout.buffer
    for _ in range(int(os.environ["FAKE_TBOT_CHUNKS"])):
        out.write(chunk)
    out.flush()
"""
LONG_LINE_UNIT = "tbot::\u00e9-"
LONG_LINE_CHUNK_UNITS = (1 << 20) // len(LONG_LINE_UNIT.encode())
MIB = 1 << 20


class Step:
    """The step as a process: its log read as it comes, waited for with its peak memory."""

    def __init__(self, argv: list[str], env: dict[str, str], *, ignored: tuple[int, ...]) -> None:
        self.lines: list[str] = []
        self.long_lines: list[str] = []  # over 1000 characters: kept apart
        self._seen = threading.Condition()
        self.proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group: nothing escapes the teardown
            preexec_fn=_signals_as(ignored),  # noqa: PLW1509 - only sets signal dispositions
        )
        self.returncode: int | None = None
        self.peak_rss_kib = 0
        self.stderr = b""
        self._threads = [
            threading.Thread(target=self._read_log, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _read_log(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8").removesuffix("\n")
            with self._seen:
                (self.long_lines if len(line) > 1000 else self.lines).append(line)
                self._seen.notify_all()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()

    def wait_for_line(self, wanted: str, timeout: float = 30) -> None:
        with self._seen:
            if not self._seen.wait_for(lambda: wanted in self.lines, timeout):
                raise AssertionError(f"no line {wanted!r} in {timeout} s: {self.lines}")

    def signal(self, signum: int) -> None:
        os.kill(self.proc.pid, signum)  # the step's process alone, not its group

    def wait(self, timeout: float = 60) -> int:
        """Reap the step; its peak RSS (and its children's) comes with it from wait4."""

        def reap() -> None:
            _, status, usage = os.wait4(self.proc.pid, 0)
            self.returncode = os.waitstatus_to_exitcode(status)
            self.proc.returncode = self.returncode
            self.peak_rss_kib = usage.ru_maxrss

        reaper = threading.Thread(target=reap, daemon=True)
        reaper.start()
        reaper.join(timeout)
        if reaper.is_alive():
            self.kill_group()
            reaper.join()
            raise AssertionError(f"the step did not end within {timeout} s: {self.lines}")
        for thread in self._threads:
            thread.join(timeout)
        assert self.returncode is not None
        return self.returncode

    def group_is_empty(self) -> bool:
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return True
        return False

    def kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def errors(self) -> list[str]:
        return errors("\n".join(self.lines))


def _signals_as(ignored: tuple[int, ...]) -> Callable[[], None]:
    """The step starts with default dispositions (a test run in the background ignores
    SIGINT), or ignoring those listed, like a step under ``nohup``."""

    def apply() -> None:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN if signum in ignored else signal.SIG_DFL)

    return apply


StartStep = Callable[..., Step]


@pytest.fixture
def start_step(job: Job) -> Iterator[StartStep]:
    """Start the step with the fake tbot; every process it left is killed at teardown."""
    fake = job.root / "bin" / "tbot"
    fake.write_text(f"#!{sys.executable}\n{FAKE_TBOT}")
    job.env["FAKE_TBOT_RECORD"] = str(job.root / "fake-tbot.jsonl")
    started: list[Step] = []

    def start(mode: str, *, ignored: tuple[int, ...] = (), driver: str = "") -> Step:
        job.env["FAKE_TBOT_MODE"] = mode
        launcher = ["-c", driver] if driver else [str(REPO / "src" / "run_action.py")]
        step = Step([sys.executable, "-I", "-S", "-X", "utf8", *launcher], job.env, ignored=ignored)
        started.append(step)
        return step

    yield start
    for step in started:
        step.kill_group()
        if step.returncode is None:
            step.wait()


def fake_records(job: Job) -> list[dict[str, object]]:
    path = Path(job.env["FAKE_TBOT_RECORD"])
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def signals_received(job: Job) -> list[object]:
    return [r["name"] for r in fake_records(job) if r["event"] == "signal"]


def assert_cancelled_cleanly(job: Job, step: Step, signum: int) -> str:
    """Exit 128+N, one error, commands resumed, nothing published or left behind."""
    assert step.wait() == 128 + signum, (step.lines, step.stderr)
    assert step.stderr == b""  # no traceback
    [error] = step.errors()
    assert error.startswith(f"::error::The step was cancelled ({signal.Signals(signum).name})")
    # Workflow commands were resumed before the error, so the runner reads it.
    [stop] = [line for line in step.lines if line.startswith("::stop-commands::")]
    resume = f"::{stop.removeprefix('::stop-commands::')}::"
    assert resume in step.lines
    assert step.lines.index(stop) < step.lines.index(resume) < step.lines.index(error)
    # The config (the token) is gone, and with it everything in RUNNER_TEMP.
    [start] = [r for r in fake_records(job) if r["event"] == "start"]
    assert start["config_exists"] is True
    assert not Path(str(start["config"])).parent.exists()
    assert job.runner_temp_entries() == []
    assert Path(job.env["GITHUB_OUTPUT"]).read_text() == ""
    assert Path(job.env["GITHUB_ENV"]).read_text() == ""
    assert step.group_is_empty(), "a process outlived the step"
    return error


@pytest.mark.launched
@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=lambda s: s.name
)
def test_cancelling_the_step_stops_tbot_and_publishes_nothing(
    job: Job, start_step: StartStep, signum: signal.Signals
) -> None:
    step = start_step("wait")
    step.wait_for_line("tbot: waiting")
    step.signal(signum)
    error = assert_cancelled_cleanly(job, step, signum)
    # tbot got the same signal, and exited by itself (with 0, even: still a failure).
    assert signals_received(job) == [signum.name]
    assert f"tbot: got {signum.name}, shutting down" in step.lines, "\n".join(step.lines)
    assert "tbot got" in error
    assert "and exited" in error


@pytest.mark.launched
def test_a_tbot_that_ignores_the_signal_is_killed_after_the_wait(
    job: Job, start_step: StartStep
) -> None:
    step = start_step("ignore")
    step.wait_for_line("tbot: waiting")
    step.signal(signal.SIGTERM)
    error = assert_cancelled_cleanly(job, step, signal.SIGTERM)
    assert signals_received(job) == ["SIGTERM"]
    assert "was killed (it did not exit within 5 s)" in error
    assert "Killing tbot: it did not exit within 5 s." in step.lines


# The whole step, with tbot given a minute to stop: only a second signal ends it sooner.
PATIENT_STEP = f"""
import sys
sys.path[:0] = [{str(REPO / "_vendor")!r}, {str(REPO / "src")!r}]
from teleport_auth import tbot
tbot.STOP_WAIT_SECONDS = 60.0
from teleport_auth.main import main
sys.exit(main([]))
"""


@pytest.mark.launched
def test_a_second_signal_kills_tbot_at_once(job: Job, start_step: StartStep) -> None:
    step = start_step("ignore", driver=PATIENT_STEP)
    step.wait_for_line("tbot: waiting")
    step.signal(signal.SIGTERM)
    step.wait_for_line(
        "The step was cancelled (SIGTERM): passing it on to tbot, which has 60 s to exit."
    )
    # tbot has the first signal (and ignores it); the second one ends the wait.
    step.wait_for_line("tbot: ignoring SIGTERM")
    step.signal(signal.SIGINT)
    error = assert_cancelled_cleanly(job, step, signal.SIGTERM)  # the first signal counts
    assert "was killed (another signal came)" in error
    assert signals_received(job) == ["SIGTERM"]


@pytest.mark.launched
def test_a_cancelled_step_before_tbot_starts(job: Job, start_step: StartStep) -> None:
    # `tbot version` hangs; the step is cancelled: it exits, and so does `tbot version`.
    step = start_step("slow-version")
    [version] = _wait_for_record(job, "version")
    step.signal(signal.SIGTERM)
    assert step.wait() == 128 + signal.SIGTERM
    [error] = step.errors()
    assert error == "::error::The step was cancelled (SIGTERM)."
    assert not [r for r in fake_records(job) if r["event"] == "start"]
    assert step.group_is_empty(), f"`tbot version` (pid {version['pid']}) outlived the step"
    assert Path(job.env["GITHUB_OUTPUT"]).read_text() == ""


def _wait_for_record(job: Job, event: str, timeout: float = 30) -> list[dict[str, object]]:
    # The fake records before it blocks; a bounded poll of its file.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in fake_records(job) if r["event"] == event]
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"the fake tbot never recorded {event!r}")


@pytest.mark.launched
def test_a_signal_the_step_started_ignoring_stays_ignored(job: Job, start_step: StartStep) -> None:
    # Under nohup a step ignores SIGHUP: it neither cancels nor reaches tbot.
    step = start_step("wait", ignored=(signal.SIGHUP,))
    step.wait_for_line("tbot: waiting")
    step.signal(signal.SIGHUP)
    step.signal(signal.SIGTERM)
    assert_cancelled_cleanly(job, step, signal.SIGTERM)
    assert signals_received(job) == ["SIGTERM"]


@pytest.mark.launched
def test_a_process_tbot_leaves_behind_does_not_hold_the_step(
    job: Job, start_step: StartStep
) -> None:
    step = start_step("grandchild")
    assert step.wait(timeout=30) == 0, (step.lines, step.stderr)
    ended = time.time()
    assert "tbot: done, leaving a process behind" in step.lines
    assert "identity-file" in job.outputs
    # The grandchild (sleep 300) still holds the pipe: the step did not wait for it.
    assert not step.group_is_empty()
    [exit_record] = [r for r in fake_records(job) if r["event"] == "exit"]
    gap = ended - float(str(exit_record["time"]))
    print(f"step ended {gap:.2f} s after tbot exited (a grandchild holding its stdout)")
    assert tbot.DRAIN_SECONDS <= gap < tbot.DRAIN_SECONDS + SLACK_SECONDS


# What a loaded machine may add to a bound that is waited for; the bounds' lower
# ends are exact (nothing stops the relay early), so the figure cannot hide one.
SLACK_SECONDS = 5.0


def test_the_drain_keeps_the_readmes_bound() -> None:
    # README: once tbot has exited the relay ends within 1 s, even if a process
    # it left keeps the pipe open. The drain plus one tick of the loop fit in it.
    assert tbot.DRAIN_SECONDS > 0
    assert tbot.DRAIN_SECONDS + tbot._TICK_SECONDS <= 1.0


@pytest.mark.parametrize("drain", ["DRAIN_SECONDS", 2.0])
def test_after_tbot_exits_its_output_is_relayed_for_the_drain_then_the_step_moves_on(
    drain: str | float,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # tbot exits, leaving a process that holds its stdout and keeps printing
    # (it stops by itself after a minute). The relay goes on for exactly the
    # drain: what the grandchild prints meanwhile is shown, then run_start returns.
    # A second figure (2 s) shows the bound in force is the constant.
    if isinstance(drain, float):
        monkeypatch.setattr(tbot, "DRAIN_SECONDS", drain)
    bound = tbot.DRAIN_SECONDS
    fake = _fake_script(
        tmp_path / "tbot",
        "( i=0; while [ $i -lt 600 ]; do echo grandchild: still here; sleep 0.1; "
        f"i=$((i+1)); done ) &\necho $! > {tmp_path}/grandchild\n"
        f"echo 'tbot: done'\ndate +%s.%N > {tmp_path}/exited\n",
    )
    try:
        result = run_start(fake, tmp_path / "c.yaml", dict(os.environ), debug=False)
        ended = time.time()
    finally:
        with contextlib.suppress(ProcessLookupError, FileNotFoundError, ValueError):
            os.kill(int((tmp_path / "grandchild").read_text()), signal.SIGKILL)
    assert result.exit_code == 0
    gap = ended - float((tmp_path / "exited").read_text())
    assert bound <= gap < bound + SLACK_SECONDS
    lines = capsys.readouterr().out.splitlines()
    assert "tbot: done" in lines
    assert "grandchild: still here" in lines


@pytest.mark.launched
def test_a_200_mib_line_is_relayed_in_pieces_in_bounded_memory(
    job: Job, start_step: StartStep
) -> None:
    chunks = 200 * MIB // (LONG_LINE_CHUNK_UNITS * len(LONG_LINE_UNIT.encode())) + 1
    job.env["FAKE_TBOT_CHUNKS"] = str(chunks)
    step = start_step("long-line")
    assert step.wait(timeout=300) == 0, (step.lines[-5:], step.stderr)
    peak_mib = step.peak_rss_kib / 1024
    print(f"peak RSS of the step (and its children) relaying the line: {peak_mib:.1f} MiB")
    assert peak_mib < 64
    pieces = step.long_lines
    # Bounded pieces; each continuation is marked, so none can start with "::".
    assert all(len(piece) <= PIECE_CHARS + len(CONTINUED) for piece in pieces)
    assert not pieces[0].startswith(CONTINUED)
    assert all(piece.startswith(CONTINUED) for piece in pieces[1:])
    text_chars = sum(len(piece.removeprefix(CONTINUED)) for piece in pieces)
    assert text_chars == chunks * LONG_LINE_CHUNK_UNITS * len(LONG_LINE_UNIT)
    # The line ended before the resume, which is a line of its own.
    [stop] = [line for line in step.lines if line.startswith("::stop-commands::")]
    assert f"::{stop.removeprefix('::stop-commands::')}::" in step.lines


def _fake_script(path: Path, body: str) -> str:
    path.write_text(f"#!/bin/sh\n{body}")
    path.chmod(0o755)
    return str(path)


def test_the_last_line_without_newline_and_the_resume_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tbot = _fake_script(
        tmp_path / "tbot", "printf 'ERROR: joining: denied\\r\\ntail without newline'\n"
    )
    result = run_start(tbot, tmp_path / "c.yaml", dict(os.environ), debug=False)
    assert result.exit_code == 0
    assert result.last_error == "joining: denied"
    lines = capsys.readouterr().out.splitlines()
    resume = next(line for line in lines if re.fullmatch(r"::[0-9a-f]{32}::", line))
    assert lines[lines.index(resume) - 1] == "tail without newline"


def test_a_huge_error_line_is_bounded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tbot = _fake_script(
        tmp_path / "tbot", "printf 'ERROR: '; head -c 300000 /dev/zero | tr '\\0' x; exit 1\n"
    )
    result = run_start(tbot, tmp_path / "c.yaml", dict(os.environ), debug=False)
    assert result.exit_code == 1
    assert result.last_error == "x" * 1000 + "…"
    capsys.readouterr()
