"""Finding, checking and running the tbot binary."""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from teleport_auth import HELPER_NAME, HELPER_VERSION, cancel, gha
from teleport_auth.cancel import Cancelled
from teleport_auth.gha import ActionFailure
from teleport_auth.record import Record
from teleport_auth.relay import LineRelay
from teleport_auth.telemetry import HELPER_ENV, HELPER_VERSION_ENV, OPT_IN_ENV

_VERSION_LINE = re.compile(
    r"^Teleport (?P<enterprise>Enterprise )?"
    r"v(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?(?:\s|$)"
)
_ERROR_LINE = re.compile(r"^ERROR:\s*(?P<message>.*\S)")

# Variables left over from an earlier auth step clash with our config: tbot refuses to start.
_DROPPED_FROM_TBOT_ENV = ("TELEPORT_PROXY", "TELEPORT_AUTH_SERVER")
SETUP_HINT = (
    "Install tbot before this step, for example with "
    "[`teleport-actions/setup`](https://github.com/teleport-actions/setup)."
)


class TbotVersion(Record):
    __slots__ = ("enterprise", "major", "minor", "patch", "prerelease", "release_rank")

    def __init__(
        self,
        *,
        major: int,
        minor: int,
        patch: int,
        release_rank: int,
        prerelease: str,
        enterprise: bool = False,
    ) -> None:
        self.major = major
        self.minor = minor
        self.patch = patch
        # A pre-release sorts before its release: 0 for a pre-release, 1 for a release.
        self.release_rank = release_rank
        self.prerelease = prerelease
        self.enterprise = enterprise

    @property
    def text(self) -> str:
        """The version as tbot reports it in telemetry: no leading ``v``."""
        base = f"{self.major}.{self.minor}.{self.patch}"
        return f"{base}-{self.prerelease}" if self.prerelease else base

    def at_least(self, minimum: tuple[int, int, int]) -> bool:
        return (self.major, self.minor, self.patch, self.release_rank) >= (*minimum, 1)

    def describe(self) -> str:
        return f"{self.text} (Enterprise)" if self.enterprise else self.text


def parse_version(output: str) -> TbotVersion:
    """Parse ``tbot version`` output: ``Teleport [Enterprise ]vX.Y.Z git:... goA.B``."""
    for line in output.splitlines():
        match = _VERSION_LINE.match(line.strip())
        if match:
            pre = match["pre"] or ""
            return TbotVersion(
                major=int(match["major"]),
                minor=int(match["minor"]),
                patch=int(match["patch"]),
                release_rank=0 if pre else 1,
                prerelease=pre,
                enterprise=bool(match["enterprise"]),
            )
    raise ValueError("no 'Teleport vX.Y.Z' line")


def _which(name: str, path: str | None) -> str | None:
    """``shutil.which`` for a plain name (without loading shutil on every run)."""
    for directory in (path if path is not None else os.defpath).split(os.pathsep):
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def find_tbot(env: Mapping[str, str]) -> str:
    path = _which("tbot", env.get("PATH"))
    if path is None:
        raise ActionFailure(
            "tbot was not found on PATH. Install it first with teleport-actions/setup.",
            hint=SETUP_HINT,
        )
    return path


def read_version(tbot: str, env: Mapping[str, str]) -> TbotVersion:
    try:
        done = subprocess.run(
            [tbot, "version"],
            env=tbot_env(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ActionFailure(f"Could not run `tbot version`: {exc}", hint=SETUP_HINT) from None
    try:
        return parse_version(done.stdout)
    except ValueError:
        first = (done.stdout.strip().splitlines() or done.stderr.strip().splitlines() or [""])[0]
        raise ActionFailure(
            f"Could not read the version of tbot from `tbot version` (exit code "
            f"{done.returncode}, first line {first[:120]!r}).",
            hint=SETUP_HINT,
        ) from None


def tbot_env(env: Mapping[str, str]) -> dict[str, str]:
    """The job's environment as tbot should see it.

    The step is the telemetry sender of record, so tbot's own reporting is
    switched off: each run is counted once whatever tbot version is installed.
    """
    result = {
        key: value
        for key, value in env.items()
        if key not in _DROPPED_FROM_TBOT_ENV and not key.startswith("INPUT_")
    }
    result[OPT_IN_ENV] = "0"
    # The member's helper fields, as the step set them (auth's when called alone).
    result[HELPER_ENV] = env.get(HELPER_ENV) or HELPER_NAME
    result[HELPER_VERSION_ENV] = env.get(HELPER_VERSION_ENV) or HELPER_VERSION
    return result


class RunResult(Record):
    __slots__ = ("exit_code", "last_error", "seconds")

    def __init__(self, exit_code: int, last_error: str, seconds: float) -> None:
        self.exit_code = exit_code
        self.last_error = last_error
        self.seconds = seconds


# After the step is cancelled, tbot gets this long to exit on the same signal.
STOP_WAIT_SECONDS = 5.0
# Once tbot has exited, what is left in the pipe is relayed for at most this
# long: a process tbot left behind that holds its stdout cannot hold the step.
DRAIN_SECONDS = 0.5
# How often the relay looks at tbot and at a pending cancellation.
_TICK_SECONDS = 0.05
_READ_BYTES = 64 * 1024
_ERROR_MAX_CHARS = 1000


def run_start(tbot: str, config_path: Path, env: Mapping[str, str], *, debug: bool) -> RunResult:
    """Run ``tbot start -c CONFIG``, streaming its output inside a log group.

    tbot's output is relayed with workflow commands stopped, so a line that
    happens to start with ``::`` cannot act on the job. A cancelling signal
    (see :mod:`teleport_auth.cancel`) is passed on to tbot, which is waited for
    (at most ``STOP_WAIT_SECONDS``, then killed) before :class:`Cancelled` is raised.
    """
    argv = [tbot, "start", "-c", str(config_path)]
    if debug:
        argv.append("--debug")
    started = time.monotonic()
    output = _Output()
    # Nothing in here is cut short by a signal: it is handled in _supervise.
    # Whatever happens, workflow commands work again for the rest of the step.
    with cancel.deferred(), gha.group("tbot start"), gha.commands_stopped():
        if (signum := cancel.requested()) is not None:
            raise Cancelled(signum)
        try:
            proc = subprocess.Popen(
                argv,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        except OSError as exc:
            raise ActionFailure(f"Could not start tbot: {exc}", hint=SETUP_HINT) from None
        _supervise(proc, output)
    return RunResult(proc.returncode, output.last_error, time.monotonic() - started)


class _Output:
    """tbot's output into the log, remembering its last ``ERROR:`` line."""

    def __init__(self) -> None:
        self.last_error = ""
        self.relay = LineRelay(self._line)

    def _line(self, text: str, line_start: bool) -> None:
        gha.info(text)
        match = _ERROR_LINE.match(text) if line_start else None
        if match:
            message = match["message"]
            if len(message) > _ERROR_MAX_CHARS:
                message = message[:_ERROR_MAX_CHARS] + "…"
            self.last_error = message

    def note(self, text: str) -> None:
        """A line of our own amid tbot's output."""
        self.relay.break_line()
        gha.info(text)


class _Stop:
    """A cancellation seen while tbot's output was being relayed."""

    def __init__(self, signum: int, tbot_running: bool, kill_at: float) -> None:
        self.signum = signum
        self.tbot_running = tbot_running
        self.kill_at = kill_at
        self.killed_because = ""

    def outcome(self) -> str:
        name = signal.Signals(self.signum).name
        if not self.tbot_running:
            what = " just after tbot exited"
        elif self.killed_because:
            what = (
                f" while tbot was running: tbot got {name} too and was killed "
                f"({self.killed_because})"
            )
        else:
            what = f" while tbot was running: tbot got {name} too and exited"
        return what + ". No outputs or variables were set"


def _supervise(proc: subprocess.Popen[bytes], output: _Output) -> None:
    """Relay tbot's output until it has exited; stop it if the step is cancelled."""
    pipe = proc.stdout
    if pipe is None:  # stdout=PIPE always gives one
        raise RuntimeError("tbot's output pipe is missing")
    stop: _Stop | None = None
    drain_until: float | None = None
    try:
        while True:
            now = time.monotonic()
            if stop is None and (signum := cancel.requested()) is not None:
                stop = _Stop(signum, proc.poll() is None, now + STOP_WAIT_SECONDS)
                if stop.tbot_running:
                    output.note(
                        f"The step was cancelled ({signal.Signals(signum).name}): passing it "
                        f"on to tbot, which has {STOP_WAIT_SECONDS:.0f} s to exit."
                    )
                    _send(proc, signum)
            if (
                stop is not None
                and proc.poll() is None
                and (cancel.repeated() or now >= stop.kill_at)
            ):
                stop.killed_because = (
                    "another signal came"
                    if cancel.repeated()
                    else f"it did not exit within {STOP_WAIT_SECONDS:.0f} s"
                )
                output.note(f"Killing tbot: {stop.killed_because}.")
                proc.kill()
                proc.wait()
            if drain_until is None and proc.poll() is not None:
                drain_until = now + DRAIN_SECONDS
            if pipe.closed:
                if drain_until is not None:
                    break
                _wait_a_tick(proc)
            elif drain_until is not None and now >= drain_until:
                break
            elif select.select([pipe], [], [], _TICK_SECONDS)[0]:
                data = os.read(pipe.fileno(), _READ_BYTES)
                if data:
                    output.relay.feed(data)
                else:
                    pipe.close()
    finally:
        # Even if something above failed: no tbot is left behind, nothing holds the pipe.
        output.relay.close()
        pipe.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    if stop is not None:
        raise Cancelled(stop.signum, stop.outcome())


def _send(proc: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it has just exited
        proc.send_signal(signum)


def _wait_a_tick(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=_TICK_SECONDS)


def describe_exit(code: int, *, exited: str = "failed with exit code") -> str:
    """tbot's exit status in words; a signal shows as the shell would report it."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"{exited} {code}"


def step_exit_code(code: int) -> int:
    """The step's exit code for tbot's: 128+N for a signal, like a shell."""
    return 128 - code if code < 0 else code
