"""Finding, checking and running the tbot binary."""

from __future__ import annotations

import re
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from teleport_auth import HELPER_NAME, __version__, gha
from teleport_auth.gha import ActionFailure
from teleport_auth.telemetry import HELPER_ENV, HELPER_VERSION_ENV, OPT_IN_ENV

_VERSION_LINE = re.compile(
    r"^Teleport (?P<enterprise>Enterprise )?"
    r"v(?P<major>\d+)\.(?P<minor>\d+)\.(?P<patch>\d+)"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?(?:\s|$)"
)
_ERROR_LINE = re.compile(r"^ERROR:\s*(?P<message>.*\S)")

# Variables left over from an earlier auth step clash with our config: tbot refuses to start.
_DROPPED_FROM_TBOT_ENV = ("TELEPORT_PROXY", "TELEPORT_AUTH_SERVER")
_SETUP_HINT = (
    "Install tbot before this step, for example with "
    "[`teleport-actions/setup`](https://github.com/teleport-actions/setup)."
)


@dataclass(frozen=True, order=True)
class TbotVersion:
    major: int
    minor: int
    patch: int
    # A pre-release sorts before its release: "" must compare greatest.
    release_rank: int
    prerelease: str
    enterprise: bool = False

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


def find_tbot(env: Mapping[str, str]) -> str:
    path = shutil.which("tbot", path=env.get("PATH"))
    if path is None:
        raise ActionFailure(
            "tbot was not found on PATH. Install it first with teleport-actions/setup.",
            hint=_SETUP_HINT,
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
        raise ActionFailure(f"Could not run `tbot version`: {exc}", hint=_SETUP_HINT) from None
    try:
        return parse_version(done.stdout)
    except ValueError:
        first = (done.stdout.strip().splitlines() or done.stderr.strip().splitlines() or [""])[0]
        raise ActionFailure(
            f"Could not read the version of tbot from `tbot version` (exit code "
            f"{done.returncode}, first line {first[:120]!r}).",
            hint=_SETUP_HINT,
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
    result[HELPER_VERSION_ENV] = env.get(HELPER_VERSION_ENV) or __version__
    return result


@dataclass(frozen=True)
class RunResult:
    exit_code: int
    last_error: str
    seconds: float


def run_start(tbot: str, config_path: Path, env: Mapping[str, str], *, debug: bool) -> RunResult:
    """Run ``tbot start -c CONFIG``, streaming its output inside a log group.

    tbot's output is relayed with workflow commands stopped, so a line that
    happens to start with ``::`` cannot act on the job.
    """
    argv = [tbot, "start", "-c", str(config_path)]
    if debug:
        argv.append("--debug")
    last_error = ""
    resume = secrets.token_hex(16)
    started = time.monotonic()
    with gha.group("tbot start"):
        gha.info(f"::stop-commands::{resume}")
        try:
            proc = subprocess.Popen(
                argv,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                encoding="utf-8",
                errors="replace",
                bufsize=1,
            )
            with proc:
                for line in proc.stdout or ():
                    gha.info(line.rstrip("\n"))
                    match = _ERROR_LINE.match(line)
                    if match:
                        last_error = match["message"]
        except OSError as exc:
            raise ActionFailure(f"Could not start tbot: {exc}", hint=_SETUP_HINT) from None
        finally:
            # Whatever happened, workflow commands work again for the rest of the step.
            gha.info(f"::{resume}::")
    return RunResult(proc.returncode, last_error, time.monotonic() - started)


def describe_exit(code: int) -> str:
    """tbot's exit status in words; a signal shows as the shell would report it."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"failed with exit code {code}"


def step_exit_code(code: int) -> int:
    """The step's exit code for tbot's: 128+N for a signal, like a shell."""
    return 128 - code if code < 0 else code
