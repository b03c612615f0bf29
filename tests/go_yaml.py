"""Go's gopkg.in/yaml.v3, the parser tbot reads its config with, for the tests.

``build(directory)`` compiles ``tests/goyaml/main.go`` offline against Debian's
``golang-gopkg-yaml.v3-dev`` (``apt-get install golang-go golang-gopkg-yaml.v3-dev``;
``.ci/run`` installs both); ``read(binary, path)`` parses a file with it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).resolve().parent / "goyaml" / "main.go"
# Where Debian's package puts the library's source (a GOPATH tree).
GOPATH = Path("/usr/share/gocode")
YAML_V3 = GOPATH / "src" / "gopkg.in" / "yaml.v3"
MISSING = (
    "Go's yaml.v3 is not installed (apt-get install golang-go golang-gopkg-yaml.v3-dev; "
    ".ci/run installs both)"
)


def available() -> bool:
    return shutil.which("go") is not None and (YAML_V3 / "yaml.go").is_file()


def build(directory: Path) -> Path:
    """Compile the reader into ``directory``: offline, GOPATH mode, nothing fetched."""
    binary = directory / "goyaml"
    env = dict(os.environ)
    env |= {
        "GO111MODULE": "off",
        "GOPATH": str(GOPATH),
        "GOFLAGS": "",
        "GOPROXY": "off",
        "GOTOOLCHAIN": "local",
    }
    if not any(env.get(name) for name in ("GOCACHE", "XDG_CACHE_HOME", "HOME")):
        env["GOCACHE"] = str(directory / "gocache")
    done = subprocess.run(
        ["go", "build", "-o", str(binary), str(SOURCE)],
        cwd=SOURCE.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"building {SOURCE} failed:\n{done.stdout}{done.stderr}")
    return binary


@dataclass(frozen=True)
class Parsed:
    """yaml.v3's reading of a file: the document, or its error message."""

    document: Any
    error: str


def read(binary: Path, *paths: Path) -> list[Parsed]:
    """Each file as yaml.v3 reads it (one process for all of them)."""
    done = subprocess.run(
        [str(binary), *map(str, paths)], capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{binary}: exit {done.returncode}: {done.stderr.strip()}")
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) == len(paths)
    return [Parsed(line.get("document"), line.get("error", "")) for line in lines]
