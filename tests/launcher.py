"""Running src/launch as the runner does, and reading its log as the runner reads it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# What a checkout of a branch holds for the action, before any bundle is built.
CHECKOUT = ("action.yml", "requirements.txt", "src", "scripts")
_COMMAND = re.compile(r"::([^\s:]+)(?: [^:]*)?::(.*)")


def copy_action(dest: Path, *, with_bundle: bool = False) -> Path:
    """The action as a branch checkout holds it (and with the built bundle if asked)."""
    dest.mkdir(parents=True)
    names = (*CHECKOUT, "_vendor") if with_bundle else CHECKOUT
    for name in names:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, dest / name)
    return dest


def launch(
    action_dir: Path,
    env: dict[str, str],
    *args: str,
    cwd: Path | None = None,
    merged: bool = False,
) -> subprocess.CompletedProcess[str]:
    """``bash src/launch ARGS`` as action.yml runs it (``merged``: one stream, as the runner)."""
    return subprocess.run(
        ["bash", str(action_dir / "src" / "launch"), *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merged else subprocess.PIPE,
        text=True,
        errors="replace",
        timeout=300,
        check=False,
    )


def python_first_on_path(env: dict[str, str]) -> dict[str, str]:
    """The interpreter running the tests (with pip) as the runner's python3."""
    return env | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"}


def log_lines(log: str) -> list[str]:
    # The runner reads a step's output line by line, breaking at \n, \r\n or \r only.
    return re.split(r"\r\n|\r|\n", log.removesuffix("\n"))


def runner_commands(log: str) -> list[tuple[str, str]]:
    """The workflow commands the runner acts on, in order, as (name, value).

    As the runner does: a command only at the start of a line (after blanks), and
    after ``::stop-commands::TOKEN`` nothing until the line ``::TOKEN::``, which
    is listed as ``("resume", TOKEN)``.
    """
    commands: list[tuple[str, str]] = []
    stopped = ""
    for line in log_lines(log):
        match = _COMMAND.fullmatch(line.lstrip())
        if stopped:
            if match and match[1] == stopped:
                commands.append(("resume", stopped))
                stopped = ""
            continue
        if match:
            commands.append((match[1], match[2]))
            if match[1] == "stop-commands":
                stopped = match[2]
    return commands
