"""The daemon members' end of the job: the Python post logic, its runner and the Node shim."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO, gone_within
from teleport_auth import end_of_job, tbot_log
from teleport_auth.end_of_job import State, stop
from teleport_auth.procfs import start_ticks

pytestmark = pytest.mark.step

SHIM = REPO / "end-of-job"
RUNNER = REPO / "src" / "run_end_of_job.py"
# Stands in for tbot: a process that runs until it is signalled (or ignores SIGTERM).
SLEEPER = "import signal, sys, time\n{extra}\nprint('ready', flush=True)\ntime.sleep(120)\n"


class Sleeper:
    """A child process in its own session, as the step starts tbot; always ended by the test."""

    def __init__(self, *, ignore_term: bool = False) -> None:
        extra = "signal.signal(signal.SIGTERM, signal.SIG_IGN)" if ignore_term else ""
        self.process = subprocess.Popen(
            [sys.executable, "-c", SLEEPER.format(extra=extra)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        # Its signal handling is in place once it says so.
        assert self.process.stdout.readline() == "ready\n"
        self.start = start_ticks(self.process.pid)

    @property
    def pid(self) -> int:
        return self.process.pid

    def state(self, log: Path, start: int | None = -1) -> State:
        return State("database-tunnel", self.pid, self.start if start == -1 else start, log)

    def end(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        assert self.process.stdout is not None
        self.process.stdout.close()


@pytest.fixture
def sleeper() -> Iterator[Sleeper]:
    running = Sleeper()
    try:
        yield running
    finally:
        running.end()


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "tbot.log"
    path.write_text("INFO first line\n::error::a log line, not a command\nINFO last line\n")
    path.chmod(0o600)
    return path


def test_state_round_trip(tmp_path: Path) -> None:
    state = State("application-proxy", 4242, 987654, tmp_path / "tbot.log")
    assert State.from_text(state.to_text()) == state
    unknown = State("application-proxy", 4242, None, tmp_path / "tbot.log")
    assert State.from_text(unknown.to_text()) == unknown


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[]",
        json.dumps({"member": "m", "pid": 1, "start": 1, "log": "/x"}),  # init: never ours
        json.dumps({"member": "m", "pid": "12", "start": 1, "log": "/x"}),
        json.dumps({"member": "m", "pid": True, "start": 1, "log": "/x"}),
        json.dumps({"member": "m", "pid": 12, "start": "1", "log": "/x"}),
        json.dumps({"member": "m", "pid": 12, "start": 1, "log": ""}),
        json.dumps({"pid": 12, "start": 1, "log": "/x"}),
    ],
)
def test_bad_state_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="the saved"):
        State.from_text(text)


def test_start_ticks_of_a_live_process_and_of_none(sleeper: Sleeper) -> None:
    assert isinstance(sleeper.start, int)
    assert start_ticks(sleeper.pid) == sleeper.start
    sleeper.process.kill()
    assert gone_within(sleeper.pid)
    # A zombie (exited, not yet reaped) is gone too.
    assert start_ticks(sleeper.pid) is None
    sleeper.process.wait()
    assert start_ticks(sleeper.pid) is None


def test_stops_the_process_it_was_told_about(sleeper: Sleeper, log_file: Path) -> None:
    said = stop(sleeper.state(log_file))
    assert said.startswith(f"Stopped tbot (pid {sleeper.pid}) after ")
    # stop() returned once it had exited: no wait needed here.
    assert sleeper.process.poll() == -signal.SIGTERM


def test_without_pidfd_it_still_stops_it(
    sleeper: Sleeper, log_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unsupported(pid: int) -> int:
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(os, "pidfd_open", unsupported)
    said = stop(sleeper.state(log_file))
    assert said.startswith(f"Stopped tbot (pid {sleeper.pid}) after ")
    assert sleeper.process.poll() == -signal.SIGTERM


def test_kills_it_when_it_ignores_sigterm(log_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(end_of_job, "GRACE_SECONDS", 0.3)
    stubborn = Sleeper(ignore_term=True)
    try:
        said = stop(stubborn.state(log_file))
        assert said == f"tbot (pid {stubborn.pid}) did not exit within 0.3 s of SIGTERM: killed."
        assert stubborn.process.poll() == -signal.SIGKILL
    finally:
        stubborn.end()


def test_a_reused_pid_is_left_alone(sleeper: Sleeper, log_file: Path) -> None:
    assert sleeper.start is not None
    # The saved pid now names another process (another start time): not ours to signal.
    said = stop(sleeper.state(log_file, start=sleeper.start - 1))
    assert said == (
        f"tbot (pid {sleeper.pid}) had already exited; that pid is now another process, left alone."
    )
    assert sleeper.process.poll() is None


def test_an_unknown_start_time_is_left_alone(sleeper: Sleeper, log_file: Path) -> None:
    said = stop(sleeper.state(log_file, start=None))
    assert "left alone" in said
    assert sleeper.process.poll() is None


def test_a_process_already_gone(sleeper: Sleeper, log_file: Path) -> None:
    state = sleeper.state(log_file)
    sleeper.end()
    assert stop(state) == f"tbot (pid {sleeper.pid}) had already exited."


def test_main_stops_tbot_then_shows_its_whole_log(
    sleeper: Sleeper, log_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {end_of_job.STATE_ENV: sleeper.state(log_file).to_text()}
    assert end_of_job.main(env) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(
        f"teleport-actions/auth/database-tunnel: Stopped tbot (pid {sleeper.pid}) after"
    )
    assert out[1] == f"::group::tbot log (database-tunnel, pid {sleeper.pid})"
    token = out[2].removeprefix("::stop-commands::")
    assert len(token) == 32
    # Every line of the log, each unable to act as a workflow command.
    assert out[3:6] == log_file.read_text().splitlines()
    assert out[6:] == [f"::{token}::", "::endgroup::"]
    assert sleeper.process.poll() == -signal.SIGTERM


@pytest.mark.parametrize(
    ("state", "warning"),
    [
        ("", "the saved state is not JSON"),
        ('{"member": "x"}', "the saved state lacks the member or the log path"),
    ],
)
def test_main_with_a_bad_state_only_warns(
    state: str, warning: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert end_of_job.main({end_of_job.STATE_ENV: state}) == 0
    assert capsys.readouterr().out == (
        f"::warning::teleport-actions/auth end of job: {warning}; nothing to stop or show.\n"
    )


def test_main_with_the_log_gone_still_stops_tbot_and_warns(
    sleeper: Sleeper, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {end_of_job.STATE_ENV: sleeper.state(tmp_path / "gone.log").to_text()}
    assert end_of_job.main(env) == 0
    out = capsys.readouterr().out.splitlines()
    assert "Stopped tbot" in out[0]
    assert out[1:] == [
        f"::warning::Could not read tbot's log {tmp_path / 'gone.log'}: No such file or directory."
    ]
    assert sleeper.process.poll() == -signal.SIGTERM


def test_main_turns_a_bug_into_a_warning(
    log_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(state: State) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(end_of_job, "stop", broken)
    state = State("application-tunnel", 4242, 1, log_file)
    assert end_of_job.main({end_of_job.STATE_ENV: state.to_text()}) == 0
    assert capsys.readouterr().out == (
        "::warning::teleport-actions/auth/application-tunnel end of job: RuntimeError: boom\n"
    )


def test_a_long_log_shows_its_end_from_a_line_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tbot.log"
    lines = [f"INFO line {i:04d} {'x' * 40}" for i in range(400)]
    path.write_text("\n".join(lines) + "\n")
    assert tbot_log.show(path, limit=4000)
    out = capsys.readouterr().out.splitlines()
    shown = out[3:-2]
    # Whole lines only, the last ones, as many as fit in the limit.
    assert shown == lines[-len(shown) :]
    assert 4000 - 60 < sum(len(line) + 1 for line in shown) <= 4000
    left_out = path.stat().st_size - sum(len(line) + 1 for line in shown)
    assert out[1] == f"(the first {left_out} bytes are left out here; the whole log is {path})"


def test_a_short_log_is_shown_whole_beyond_forty_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tbot.log"
    lines = [f"INFO line {i}" for i in range(500)]
    path.write_text("\n".join(lines))  # no newline at the end: the last line still shows
    assert tbot_log.show(path)
    out = capsys.readouterr().out.splitlines()
    assert out[2:-2] == lines


def test_the_runner_as_the_post_step_runs_it(sleeper: Sleeper, log_file: Path) -> None:
    # post.js: python3 -I -S -X utf8 src/run_end_of_job.py, the state in the environment.
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-X", "utf8", str(RUNNER)],
        env={"PATH": os.environ["PATH"], end_of_job.STATE_ENV: sleeper.state(log_file).to_text()},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert f"Stopped tbot (pid {sleeper.pid})" in done.stdout
    assert "INFO last line" in done.stdout
    assert sleeper.process.poll() == -signal.SIGTERM


# --- the Node shim (end-of-job/main.js, post.js) --------------------------------------

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")


def node(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    assert NODE is not None
    return subprocess.run(
        [NODE, str(SHIM / script)],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def read_state_file(path: Path) -> dict[str, str]:
    """GITHUB_STATE as the runner reads it: ``name<<DELIMITER``, the value, the delimiter."""
    values = {}
    lines = path.read_text().splitlines()
    while lines:
        name, _, delimiter = lines.pop(0).partition("<<")
        end = lines.index(delimiter)
        values[name] = "\n".join(lines[:end])
        lines = lines[end + 1 :]
    return values


@needs_node
def test_shim_main_saves_its_inputs_for_the_post_step(tmp_path: Path) -> None:
    state_file = tmp_path / "state"
    state = State("database-tunnel", 4242, 1, tmp_path / "tbot.log").to_text()
    inputs = {"INPUT_PYTHON": sys.executable, "INPUT_SCRIPT": str(RUNNER), "INPUT_STATE": state}
    done = node("main.js", {"GITHUB_STATE": str(state_file), **inputs})
    assert done.returncode == 0
    assert done.stdout == done.stderr == ""
    assert read_state_file(state_file) == {
        "python": sys.executable,
        "script": str(RUNNER),
        "state": state,
    }


@needs_node
def test_shim_main_without_inputs_warns(tmp_path: Path) -> None:
    done = node("main.js", {"GITHUB_STATE": str(tmp_path / "state")})
    assert done.returncode == 0
    assert done.stdout.startswith("::warning::teleport-actions/auth end-of-job: no script")
    assert not (tmp_path / "state").exists()


@needs_node
def test_shim_post_runs_the_members_program(sleeper: Sleeper, log_file: Path) -> None:
    done = node(
        "post.js",
        {
            # The step's own interpreter comes first (python3 on PATH could be another).
            "STATE_python": sys.executable,
            "STATE_script": str(RUNNER),
            "STATE_state": sleeper.state(log_file).to_text(),
            "TELEPORT_AUTH_PYTHON": "no-such-python",
        },
    )
    assert done.returncode == 0, done.stderr
    assert f"Stopped tbot (pid {sleeper.pid})" in done.stdout
    assert "INFO last line" in done.stdout
    assert sleeper.process.poll() == -signal.SIGTERM


@needs_node
def test_shim_post_never_fails_the_job(tmp_path: Path) -> None:
    # No interpreter saved (an empty input): TELEPORT_AUTH_PYTHON, as the launcher.
    missing = node(
        "post.js",
        {"STATE_script": str(RUNNER), "STATE_state": "{}", "TELEPORT_AUTH_PYTHON": "no-python"},
    )
    assert missing.returncode == 0
    assert missing.stdout.startswith(
        f"::warning::teleport-actions/auth end-of-job: could not run no-python {RUNNER}: "
    )
    broken = tmp_path / "broken.py"
    broken.write_text("raise SystemExit(3)\n")
    failed = node(
        "post.js",
        {"STATE_python": sys.executable, "STATE_script": str(broken), "STATE_state": "{}"},
    )
    assert failed.returncode == 0
    assert failed.stdout == (
        f"::warning::teleport-actions/auth end-of-job: {sys.executable} {broken} "
        "exited with code 3.\n"
    )
    # Nothing saved (main warned already): nothing to do.
    assert node("post.js", {}).stdout == ""
