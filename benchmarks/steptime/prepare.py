"""Set-up: the real interpreter, the job's bin directory, workspaces, endpoints."""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from steptime.harness import FaultServer, prepare_workspace, start_collector
from steptime.instant_tbot import install_tbot
from steptime.model import BenchError, Mode, Pythons, Workspace

# Run by the measured interpreter: make sure every module of the copy has a valid
# checked-hash pyc for it (what scripts/bundle ships), compiling only what is missing
# or stale, and report the counts as JSON.
REFRESH_PYCS = r"""
import importlib.util, json, py_compile, sys
from pathlib import Path
counts = {"modules": 0, "valid": 0, "compiled": 0, "failed": 0}
compiled = []
for root in sys.argv[1:]:
    for py in sorted(Path(root).rglob("*.py")):
        counts["modules"] += 1
        pyc = Path(importlib.util.cache_from_source(str(py)))
        ok = False
        if pyc.is_file():
            head = pyc.read_bytes()[:16]
            flags = int.from_bytes(head[4:8], "little")
            if head[:4] == importlib.util.MAGIC_NUMBER and flags & 1:
                ok = head[8:16] == importlib.util.source_hash(py.read_bytes())
            elif head[:4] == importlib.util.MAGIC_NUMBER and flags == 0:
                st = py.stat()
                ok = (int.from_bytes(head[8:12], "little") == int(st.st_mtime) & 0xFFFFFFFF
                      and int.from_bytes(head[12:16], "little") == st.st_size & 0xFFFFFFFF)
        if ok:
            counts["valid"] += 1
            continue
        try:
            py_compile.compile(str(py), cfile=str(pyc), doraise=True,
                               invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
            counts["compiled"] += 1
            compiled.append(str(py.relative_to(Path(root).parent)))
        except py_compile.PyCompileError:
            counts["failed"] += 1
print(json.dumps({"counts": counts, "compiled": compiled}))
"""


def resolve_python(requested: str | None) -> str:
    """The real interpreter: a venv's base, symlinks resolved; never a pyenv-style shim."""
    if requested:
        found = shutil.which(requested) or requested
        path = os.path.realpath(found)
    else:
        path = os.path.realpath(getattr(sys, "_base_executable", "") or sys.executable)
    # A shim is a script that re-dispatches: the real interpreter is an ELF binary.
    with open(path, "rb") as handle:
        if handle.read(4) != b"\x7fELF":
            raise BenchError(f"{path} is not an interpreter binary (a version-manager shim?)")
    return path


def interpreter_version(python: str) -> str:
    done = subprocess.run(
        [python, "-c", "import sys; print(sys.version.split()[0], sys.implementation.cache_tag)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def write_executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)
    return path


def install_bin(bin_dir: Path, python: str) -> None:
    install_tbot(bin_dir)
    # First on the job's PATH: `python3` is the real interpreter, not the venv's or a shim.
    (bin_dir / "python3").symlink_to(python)


def install_pythons(directory: Path, python: str) -> Pythons:
    return Pythons(
        importtime=write_executable(
            directory / "python-importtime",
            f'#!/bin/sh\nexec {shlex.quote(python)} -X importtime "$@"\n',
        ),
        noop=write_executable(directory / "python-noop", "#!/bin/sh\nexit 0\n"),
    )


def count_pycs(root: Path) -> int:
    return sum(1 for _ in (root / "_vendor").rglob("*.pyc")) + sum(
        1 for _ in (root / "src").rglob("*.pyc")
    )


def make_workspace(python: str, work: Path, mode: Mode) -> Workspace:
    path = prepare_workspace(work / f"workspace-{mode.key}")
    ws = Workspace(mode, path)
    if mode.shipped_pycs:
        done = subprocess.run(
            [python, "-c", REFRESH_PYCS, str(path / "_vendor"), str(path / "src")],
            capture_output=True,
            text=True,
            check=True,
        )
        refreshed = json.loads(done.stdout)
        ws.pycs, ws.compiled = refreshed["counts"], refreshed["compiled"]
    else:
        for cache in [*path.glob("_vendor/**/__pycache__"), *path.glob("src/**/__pycache__")]:
            shutil.rmtree(cache, ignore_errors=True)
    ws.pycs["present"] = count_pycs(path)
    return ws


def start_healthy_collector(work: Path, stack: contextlib.ExitStack) -> str | None:
    """The collector as a user runs it, in its own process; None if it does not come up."""
    log = stack.enter_context((work / "collector.log").open("wb"))
    try:
        collector = start_collector(work, output=log)
    except RuntimeError:
        return None
    stack.callback(collector.stop)
    return collector.url


def start_fault_server(mode: str, stack: contextlib.ExitStack) -> str:
    # The safety timeout outlives the benchmark; stop() runs at the end either way.
    server = FaultServer(mode, safety_timeout=3600.0).start()
    stack.callback(server.stop)
    url: str = server.url
    return url


@contextlib.contextmanager
def bytecode_setting(dontwrite: bool) -> Iterator[None]:
    """PYTHONDONTWRITEBYTECODE as the act process (and so the self-hosted job) sees it."""
    saved = os.environ.get("PYTHONDONTWRITEBYTECODE")
    if dontwrite:
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        else:
            os.environ["PYTHONDONTWRITEBYTECODE"] = saved


# Set on some hosts (a TLS-inspecting proxy's CA); GitHub's hosted runners do not set it.
# node reads the whole bundle at every start (tens of ms), so it would tax the original only.
HOST_ONLY_VARIABLES = ("NODE_EXTRA_CA_CERTS",)


def drop_host_only_variables() -> dict[str, str]:
    """Remove them from this process's environment, which act and its jobs inherit."""
    return {name: os.environ.pop(name) for name in HOST_ONLY_VARIABLES if name in os.environ}
