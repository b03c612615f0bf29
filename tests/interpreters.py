"""Other CPython interpreters some tests need: those TELEPORT_AUTH_TEST_PYTHONS lists, or pyenv's.

``TELEPORT_AUTH_TEST_PYTHONS`` holds interpreter paths separated by ``:`` (the
project's GitHub workflow lists what actions/setup-python installed); on a
developer's machine ~/.pyenv/versions is looked at too.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

TEST_PYTHONS_ENV = "TELEPORT_AUTH_TEST_PYTHONS"
# Read once, at import: the job fixture replaces os.environ with the job's.
LISTED = [path for path in os.environ.get(TEST_PYTHONS_ENV, "").split(os.pathsep) if path]
PYENV_VERSIONS = Path.home() / ".pyenv" / "versions"


@dataclass(frozen=True)
class Interpreter:
    path: Path
    version: str  # in full, e.g. 3.10.13

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])


@functools.cache
def _probe(path: str) -> Interpreter | None:
    """What ``path`` is, if it runs and is CPython."""
    code = "import platform; print(platform.python_implementation(), platform.python_version())"
    try:
        done = subprocess.run(
            [path, "-I", "-c", code], capture_output=True, text=True, check=False, timeout=60
        )
    except OSError:
        return None
    words = done.stdout.split()
    if done.returncode != 0 or len(words) != 2 or words[0] != "CPython":
        return None
    return Interpreter(Path(path), words[1])


def find_python(minor: str) -> Interpreter | None:
    """A CPython ``minor`` (e.g. ``3.10``): the first one listed, else pyenv's newest."""
    kept = sorted(
        (p for p in PYENV_VERSIONS.glob(f"{minor}.*/bin/python3") if _release(p.parent.parent)),
        key=lambda p: _release(p.parent.parent),
        reverse=True,
    )
    for candidate in [*LISTED, *map(str, kept)]:
        found = _probe(candidate)
        if found is not None and found.minor == minor:
            return found
    return None


def _release(folder: Path) -> tuple[int, ...]:
    """pyenv's folder name as a version (3.10.13), or () for anything else (3.10-dev)."""
    if not re.fullmatch(r"3\.\d+\.\d+", folder.name):
        return ()
    return tuple(map(int, folder.name.split(".")))
