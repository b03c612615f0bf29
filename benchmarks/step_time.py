#!/usr/bin/env python3
"""Step-time benchmark: the real action.yml through act on this host, with an instant tbot.

Usage: ``python3 scripts/dev bench [--runs N | --quick] [--json PATH] [--modes M,...]
[--python PATH] [--keep]``

For each case (telemetry off; on with a healthy local collector; on with an
endpoint that accepts and never answers) and each bytecode mode (the shipped
checked-hash pycs with PYTHONDONTWRITEBYTECODE=1, as these machines and a fresh
hosted runner; the same with the bytecode cache allowed; no pycs at all) it runs
the demo workflow through ``act -P ubuntu-latest=-self-hosted`` N times after one
warm-up run, cases interleaved, and prints:

* median and p90 of act's timing of the action's step;
* the action's own overhead: step time minus the wall-clock time spent inside
  tbot (the instant stand-in records the start and end of each invocation);
* where that overhead goes, from the same step run directly through src/launch
  (outside act);
* the Python step's import time (``-X importtime``, run directly through
  src/launch, the median of 3 runs per mode and case): totals and the top 5 modules;
* the size of what the action ships.

Each figure that has a target is printed next to it with PASS/FAIL; the exit
status is 1 when a target is missed (2 when the benchmark itself could not run).
The step runs on the real interpreter, never a version-manager shim: the
interpreter behind this process (``sys._base_executable``, symlinks resolved)
is put first on the job's PATH as ``python3`` and named in TELEPORT_AUTH_PYTHON.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

# `mypy benchmarks` alone does not see tests/ (a full `mypy` run does and checks these).
from act_harness import (  # noqa: E402
    SHIPPED,
    ActRun,
    act_binary,
    prepare_workspace,
    run_act,
    start_collector,
)
from fault_server import FaultServer  # noqa: E402

HANG_TARGET_MS = 1000.0
JS_ORIGINAL = "the JavaScript original: about 250-350 ms around tbot"
OIDC_URL = "http://127.0.0.1:9/oidc-not-available-under-act"
TBOT_VERSION_LINE = "Teleport v16.4.2 git:v16.4.2-0-g1a2b3c4 go1.22.8"

# An instant tbot. `tbot version` prints a version line; `tbot start -c CFG` writes the
# identity output's files into the destination named in the config (0600) and exits.
# Every invocation appends "command start-ns end-ns" to $BENCH_TBOT_TIMES; with
# $BENCH_TBOT_PROBE set, `start` also writes what the step looks like from inside
# (its parent is the step's Python process: launch execs it).
INSTANT_TBOT = r"""#!/bin/sh
t0=$(date +%s%N)
cmd=${1:-}
case "$cmd" in
version)
    echo "@VERSION@"
    ;;
start)
    shift
    cfg=
    while [ $# -gt 0 ]; do
        case "$1" in
        -c | --config) cfg=${2:-}; [ $# -gt 1 ] && shift ;;
        esac
        shift
    done
    # The identity output's destination: the only `path:` key in the generated config.
    dest=$(sed -n "/^ *path: */{s///;s/^[\"']//;s/[\"']\$//;p;q;}" "$cfg")
    if [ -z "$dest" ]; then
        echo "ERROR: no destination path in the config" >&2
        exit 1
    fi
    umask 077
    mkdir -p "$dest"
    for f in identity key key.pub key-cert.pub tlscert teleport-host-ca.crt \
        teleport-user-ca.crt teleport-database-ca.crt known_hosts ssh_config; do
        echo "instant tbot stand-in: $f" >"$dest/$f"
    done
    echo "INFO [TBOT] One-shot mode completed, exiting."
    if [ -n "${BENCH_TBOT_PROBE:-}" ]; then
        action=${GITHUB_ACTION_PATH:-/nonexistent}
        {
            echo "python=$(readlink "/proc/$PPID/exe")"
            echo "dontwrite=${PYTHONDONTWRITEBYTECODE-<unset>}"
            echo "action_path=${GITHUB_ACTION_PATH:-}"
            echo "pycs=$(find "$action/src" "$action/_vendor" -name '*.pyc' 2>/dev/null | wc -l)"
        } >"$BENCH_TBOT_PROBE"
    fi
    ;;
*)
    echo "ERROR: the benchmark's tbot does not do '$cmd'" >&2
    exit 1
    ;;
esac
if [ -n "${BENCH_TBOT_TIMES:-}" ]; then
    echo "$cmd $t0 $(date +%s%N)" >>"$BENCH_TBOT_TIMES"
fi
""".replace("@VERSION@", TBOT_VERSION_LINE)

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


class BenchError(RuntimeError):
    """The benchmark could not measure what it meant to (not a missed target)."""


@dataclass(frozen=True)
class Mode:
    key: str
    label: str
    dontwrite: bool
    shipped_pycs: bool
    gated: bool  # targets are judged in this mode
    show_tops: bool = True  # print the top-5 import lists (the cache mode repeats the first)
    skip_hang: bool = False  # informational mode: the never-answering case adds only runtime


@dataclass(frozen=True)
class Case:
    key: str
    label: str
    telemetry: str
    endpoint: str | None
    target_ms: float | None
    expect: str  # the run's log shows this when the case did what it should


MODES = (
    Mode(
        "shipped",
        "shipped pycs, PYTHONDONTWRITEBYTECODE=1 (as these machines; a fresh hosted runner)",
        dontwrite=True,
        shipped_pycs=True,
        gated=True,
    ),
    Mode(
        "cache",
        "shipped pycs, bytecode cache allowed (PYTHONDONTWRITEBYTECODE unset, warmed once)",
        dontwrite=False,
        shipped_pycs=True,
        gated=True,
        show_tops=False,
    ),
    Mode(
        "nopyc",
        "no pycs in _vendor/ and src/, PYTHONDONTWRITEBYTECODE=1 (what shipping bytecode saves;"
        " informational, never-answering case not run)",
        dontwrite=True,
        shipped_pycs=False,
        gated=False,
        skip_hang=True,
    ),
)
CASES = (
    Case("off", "telemetry off", "false", None, 250.0, "Anonymous telemetry is not enabled."),
    Case("healthy", "on, healthy collector", "true", "healthy", 300.0, "on: event sent to"),
    Case("hang", "on, never-answering endpoint", "true", "hang", None, "did not answer in time"),
)


def cases_of(mode: Mode) -> list[Case]:
    return [c for c in CASES if not (mode.skip_hang and c.endpoint == "hang")]


@dataclass(frozen=True)
class Sample:
    step: float
    tbot: float

    @property
    def own(self) -> float:
        return self.step - self.tbot


@dataclass
class Stats:
    median: float
    p90: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stats:
        if not values:
            raise BenchError("no samples")
        if len(values) == 1:
            return cls(values[0], values[0])
        return cls(
            statistics.median(values),
            statistics.quantiles(values, n=10, method="inclusive")[8],
        )


@dataclass(frozen=True)
class ImportEntry:
    name: str
    self_us: int
    cumulative_us: int
    depth: int


@dataclass
class ImportProfile:
    entries: list[ImportEntry]
    wall: float

    @property
    def startup_us(self) -> int:
        """The interpreter's own top-level imports before src/run_action.py's first (runpy).

        With site (a plain ``python``), up to and including site and its .pth files.
        """
        top = [e for e in self.entries if e.depth == 0]
        names = [e.name for e in top]
        if "site" in names:
            cut = names.index("site") + 1
        elif "runpy" in names:
            cut = names.index("runpy")
        else:
            return 0
        return sum(e.cumulative_us for e in top[:cut])

    @property
    def total_us(self) -> int:
        return sum(e.cumulative_us for e in self.entries if e.depth == 0)

    @property
    def action_us(self) -> int:
        return self.total_us - self.startup_us

    def top(self, key: str, count: int = 5) -> list[ImportEntry]:
        if key == "self":
            return sorted(self.entries, key=lambda e: e.self_us, reverse=True)[:count]
        return sorted(self.entries, key=lambda e: e.cumulative_us, reverse=True)[:count]


@dataclass
class Workspace:
    mode: Mode
    path: Path
    pycs: dict[str, int] = field(default_factory=dict)
    compiled: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Pythons:
    """Stand-ins for TELEPORT_AUTH_PYTHON in direct runs of src/launch."""

    importtime: Path  # the real interpreter with -X importtime
    noop: Path  # exits at once: what src/launch costs by itself


@dataclass
class Context:
    python: str
    python_version: str
    work: Path
    bin_dir: Path
    pythons: Pythons
    runs: int
    modes: tuple[Mode, ...]
    workspaces: dict[str, Workspace] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    healthy_kind: str = ""


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def verdict(value_ms: float, limit_ms: float) -> str:
    return "PASS" if value_ms <= limit_ms else "FAIL"


# ---------------------------------------------------------------------------
# Set-up: interpreter, instant tbot, workspaces, endpoints


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
    write_executable(bin_dir / "tbot", INSTANT_TBOT)
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


def make_workspace(ctx: Context, mode: Mode) -> Workspace:
    path = prepare_workspace(ctx.work / f"workspace-{mode.key}")
    ws = Workspace(mode, path)
    if mode.shipped_pycs:
        done = subprocess.run(
            [ctx.python, "-c", REFRESH_PYCS, str(path / "_vendor"), str(path / "src")],
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


# ---------------------------------------------------------------------------
# Runs


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


def tbot_seconds(path: Path) -> float:
    """Wall-clock time inside tbot: the sum over its invocations (version and start)."""
    lines = path.read_text().splitlines() if path.exists() else []
    commands = [line.split()[0] for line in lines]
    if sorted(commands) != ["start", "version"]:
        raise BenchError(f"expected one `tbot version` and one `tbot start`, got {commands}")
    return sum(int(end) - int(start) for _, start, end in (line.split() for line in lines)) / 1e9


def log_tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def act_once(ctx: Context, mode: Mode, case: Case, tag: str, probe: Path | None = None) -> Sample:
    times = ctx.work / "times" / f"{mode.key}-{case.key}-{tag}"
    times.parent.mkdir(exist_ok=True)
    env = {"TELEPORT_AUTH_PYTHON": ctx.python, "BENCH_TBOT_TIMES": str(times)}
    if case.endpoint:
        env["TELEPORT_ANONYMOUS_TELEMETRY_ADDRESS"] = ctx.urls[case.endpoint]
    if probe is not None:
        env["BENCH_TBOT_PROBE"] = str(probe)
    with bytecode_setting(mode.dontwrite):
        run: ActRun = run_act(
            ctx.workspaces[mode.key].path,
            bin_dir=ctx.bin_dir,
            telemetry=case.telemetry,
            env=env,
            timeout=120,
        )
    log: str = run.log
    if not run.succeeded or case.expect not in log:
        raise BenchError(
            f"act run {mode.key}/{case.key} did not do what it should "
            f"(exit {run.returncode}, expected {case.expect!r} in the log):\n{log_tail(log)}"
        )
    step: float = run.step_seconds
    return Sample(step, tbot_seconds(times))


def read_probe(path: Path) -> dict[str, str]:
    if not path.exists():
        raise BenchError("the warm-up run left no probe: did tbot run inside the step?")
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def check_probe(ctx: Context, mode: Mode, probe: dict[str, str]) -> None:
    """What the step really ran with, seen from inside it (tbot's parent is the step)."""
    problems = []
    if os.path.realpath(probe.get("python", "")) != ctx.python:
        problems.append(f"the step ran {probe.get('python')!r}, not {ctx.python}")
    want = "1" if mode.dontwrite else "<unset>"
    if probe.get("dontwrite") != want:
        problems.append(f"PYTHONDONTWRITEBYTECODE in the step is {probe.get('dontwrite')!r}")
    pycs = int(probe.get("pycs", "-1"))
    if mode.shipped_pycs and pycs <= 0:
        problems.append("the step's copy of the action has no pycs")
    if not mode.shipped_pycs and pycs != 0:
        problems.append(f"the step's copy of the action has {pycs} pycs (expected none)")
    if problems:
        raise BenchError(f"mode {mode.key}: " + "; ".join(problems))


def act_rounds(
    ctx: Context,
) -> tuple[dict[str, dict[str, list[Sample]]], dict[str, dict[str, dict[str, str]]]]:
    samples: dict[str, dict[str, list[Sample]]] = {
        m.key: {c.key: [] for c in cases_of(m)} for m in ctx.modes
    }
    probes: dict[str, dict[str, dict[str, str]]] = {}
    rounds = ctx.runs + 1
    for index in range(rounds):
        started = time.monotonic()
        for mode in ctx.modes:
            for case in cases_of(mode):
                if index == 0:
                    probe_path = ctx.work / "times" / f"probe-{mode.key}-{case.key}"
                    act_once(ctx, mode, case, "warmup", probe_path)
                    probe = read_probe(probe_path)
                    check_probe(ctx, mode, probe)
                    probes.setdefault(mode.key, {})[case.key] = probe
                else:
                    samples[mode.key][case.key].append(act_once(ctx, mode, case, str(index)))
        label = "warm-up" if index == 0 else f"{index}/{ctx.runs}"
        say(f"act round {label}: {time.monotonic() - started:.1f} s")
    return samples, probes


def direct_env(ctx: Context, mode: Mode, case: Case, run_dir: Path, python: str) -> dict[str, str]:
    """The step's environment as action.yml and the runner give it, for a run outside act."""
    dropped = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE"}
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in dropped and not key.startswith(("INPUT_", "TELEPORT_", "GITHUB_"))
    }
    ws = ctx.workspaces[mode.key].path
    (run_dir / "tmp").mkdir(parents=True)
    for name in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STEP_SUMMARY"):
        target = run_dir / name.lower()
        target.touch()
        env[name] = str(target)
    env.update(
        PATH=f"{ctx.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        RUNNER_TEMP=str(run_dir / "tmp"),
        GITHUB_ACTIONS="true",
        GITHUB_ACTION_PATH=str(ws),
        ACTIONS_ID_TOKEN_REQUEST_URL=OIDC_URL,
        ACTIONS_ID_TOKEN_REQUEST_TOKEN="act",  # noqa: S106 - what act's job gets too
        INPUT_PROXY="tele.example.com:443",
        INPUT_TOKEN="demo-bot",  # noqa: S106 - the demo workflow's join token name
        INPUT_CERTIFICATE_TTL="",
        INPUT_ANONYMOUS_TELEMETRY=case.telemetry,
        INPUT_CA_PINS="",
        INPUT_DISABLE_ENV_VARS="false",
        INPUT_ALLOW_REISSUE="false",
        TELEPORT_ANONYMOUS_TELEMETRY=case.telemetry,
        TELEPORT_AUTH_PYTHON=python,
        BENCH_TBOT_TIMES=str(run_dir / "tbot.times"),
    )
    if mode.dontwrite:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    if case.endpoint:
        env["TELEPORT_ANONYMOUS_TELEMETRY_ADDRESS"] = ctx.urls[case.endpoint]
    return env


_RUN_IDS = itertools.count(1)


def median_difference(minuend: Sequence[float], subtrahend: Sequence[float]) -> float:
    return statistics.median(a - b for a, b in zip(minuend, subtrahend, strict=True))


def direct_run(
    ctx: Context,
    mode: Mode,
    case: Case,
    argv: Sequence[str] | None = None,
    *,
    python: str | None = None,
    is_step: bool = True,
) -> tuple[float, float, str]:
    """Run the step outside act, by default as the runner does (``bash src/launch``):
    wall seconds, seconds in tbot, stderr. ``python``: TELEPORT_AUTH_PYTHON (a wrapper).

    ``is_step=False``: something else in the step's environment (no tbot, no checks).
    """
    if argv is None:
        argv = ["bash", str(ctx.workspaces[mode.key].path / "src" / "launch")]
    run_dir = ctx.work / "direct" / f"{next(_RUN_IDS):04d}"
    env = direct_env(ctx, mode, case, run_dir, python or ctx.python)
    started = time.perf_counter()
    done = subprocess.run(
        list(argv), env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    if not is_step:
        if done.returncode != 0:
            raise BenchError(f"{' '.join(argv)} failed:\n{log_tail(done.stderr, 10)}")
        return wall, 0.0, done.stderr
    shown = done.stdout + (run_dir / "github_step_summary").read_text()
    if done.returncode != 0 or case.expect not in shown:
        raise BenchError(
            f"direct run {mode.key}/{case.key} ({' '.join(argv[:2])}) failed "
            f"(exit {done.returncode}, expected {case.expect!r}):\n"
            f"{log_tail(done.stdout)}\n{log_tail(done.stderr, 10)}"
        )
    return wall, tbot_seconds(run_dir / "tbot.times"), done.stderr


def parse_importtime(stderr: str) -> list[ImportEntry]:
    entries = []
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line[len("import time:") :].split("|")
        if len(parts) != 3:
            continue
        try:
            self_us, cumulative_us = int(parts[0]), int(parts[1])
        except ValueError:
            continue  # the header line
        raw = parts[2]
        depth = (len(raw) - len(raw.lstrip(" ")) - 1) // 2
        entries.append(ImportEntry(raw.strip(), self_us, cumulative_us, depth))
    return entries


@dataclass
class Floor:
    bare: float  # python -I -S -c pass: the interpreter alone
    site: float  # python -I -c pass: plus site, i.e. the host's site-packages .pth files

    @property
    def pth(self) -> float:
        return self.site - self.bare


def startup_floor(ctx: Context) -> Floor:
    """An interpreter that imports nothing of ours, with and without site (medians)."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    walls: dict[str, list[float]] = {"-S": [], "": []}
    for _ in range(max(ctx.runs, 5)):
        for flag, values in walls.items():
            argv = [ctx.python, "-I", *([flag] if flag else []), "-c", "pass"]
            started = time.perf_counter()
            subprocess.run(argv, env=env, check=True)
            values.append(time.perf_counter() - started)
    return Floor(statistics.median(walls["-S"]), statistics.median(walls[""]))


@dataclass
class Walls:
    """Medians over N rounds of direct runs (each round: every command once)."""

    own: float  # src/launch with the real interpreter, minus the time inside tbot
    tbot: float
    launch_cost: float  # src/launch with a no-op interpreter: bash, sha256sum, checks
    imports: float  # python -I -S -c "<the step's imports>" minus python -I -S -c pass


@dataclass
class Direct:
    profile: ImportProfile
    walls: Walls | None = None  # not measured for the never-answering case, nor ungated modes


IMPORTTIME_RUNS = 3


def import_code(ws: Path, mode: Mode, case: Case) -> str:
    """What the step imports, on the paths src/run_action.py gives it."""
    modules = ["teleport_auth.main"]
    if case.telemetry == "true":
        modules.append("teleport_auth.telemetry.reporter")
    paths = [str(ws / "_vendor"), str(ws / "src")]
    lines = ["import sys", f"sys.path[:0] = {paths!r}"]
    if mode.dontwrite:
        lines.append("sys.dont_write_bytecode = True")
    return "; ".join(lines + [f"import {m}" for m in modules])


def direct_measurements(ctx: Context) -> dict[str, dict[str, Direct]]:
    """Per mode and case, the step run directly through src/launch (outside act).

    * ``-X importtime`` (TELEPORT_AUTH_PYTHON: a wrapper adding it): 3 runs, 1 for the
      never-answering case (its imports are the healthy one's); the median total is kept;
    * off and healthy, in the modes with targets, N rounds after a warm-up of: launch
      with the real interpreter, launch with a no-op one, the step's imports alone and
      an interpreter that does nothing, for the breakdown of the own overhead.
    """
    results: dict[str, dict[str, Direct]] = {}
    # As the step runs (src/launch): isolated and without site.
    nothing = [ctx.python, "-I", "-S", "-c", "pass"]
    for mode in ctx.modes:
        results[mode.key] = {}
        for case in cases_of(mode):
            hang = case.endpoint == "hang"
            profiles = []
            for _ in range(1 if hang else IMPORTTIME_RUNS):
                wall, _, stderr = direct_run(ctx, mode, case, python=str(ctx.pythons.importtime))
                profiles.append(ImportProfile(parse_importtime(stderr), wall))
            profiles.sort(key=lambda p: p.total_us)
            direct = Direct(profiles[len(profiles) // 2])
            if mode.gated and not hang:
                imports = [
                    ctx.python,
                    "-I",
                    "-S",
                    "-c",
                    import_code(ctx.workspaces[mode.key].path, mode, case),
                ]
                walls: dict[str, list[float]] = {
                    k: [] for k in ("own", "tbot", "noop", "imports", "nothing")
                }
                direct_run(ctx, mode, case)  # warm-up
                for _ in range(ctx.runs):
                    wall, tbot, _ = direct_run(ctx, mode, case)
                    walls["own"].append(wall - tbot)
                    walls["tbot"].append(tbot)
                    noop = direct_run(ctx, mode, case, python=str(ctx.pythons.noop), is_step=False)
                    walls["noop"].append(noop[0])
                    walls["imports"].append(direct_run(ctx, mode, case, imports, is_step=False)[0])
                    walls["nothing"].append(direct_run(ctx, mode, case, nothing, is_step=False)[0])
                direct.walls = Walls(
                    own=statistics.median(walls["own"]),
                    tbot=statistics.median(walls["tbot"]),
                    launch_cost=statistics.median(walls["noop"]),
                    imports=median_difference(walls["imports"], walls["nothing"]),
                )
            results[mode.key][case.key] = direct
        say(f"direct runs, {mode.key}: done")
    return results


# ---------------------------------------------------------------------------
# What the action ships


def is_pyc(path: Path) -> bool:
    return path.suffix == ".pyc" or "__pycache__" in path.parts


def shipped_files() -> list[Path]:
    files: list[Path] = []
    for name in SHIPPED:
        path = REPO / str(name)
        files += [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return files


def targz_size(files: Sequence[Path]) -> int:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        for path in files:
            tar.add(path, arcname=str(path.relative_to(REPO)), recursive=False)
    return len(buffer.getvalue())


def ship_size() -> dict[str, Any]:
    files = shipped_files()
    parts: dict[str, dict[str, int]] = {}
    packages: dict[str, dict[str, int]] = {}
    for path in files:
        rel = path.relative_to(REPO)
        part = rel.parts[0] + ("/" if len(rel.parts) > 1 else "")
        kind = "pyc" if is_pyc(rel) else "src"
        size = path.stat().st_size
        entry = parts.setdefault(
            part, {"src_files": 0, "src_bytes": 0, "pyc_files": 0, "pyc_bytes": 0}
        )
        entry[f"{kind}_files"] += 1
        entry[f"{kind}_bytes"] += size
        if rel.parts[0] == "_vendor" and len(rel.parts) > 2:
            top = rel.parts[1]
            name = "*.dist-info (metadata)" if top.endswith(".dist-info") else top
            package = packages.setdefault(name, {"src_bytes": 0, "pyc_bytes": 0})
            package[f"{kind}_bytes"] += size
    without_pycs = [p for p in files if not is_pyc(p.relative_to(REPO))]
    return {
        "parts": parts,
        "packages": packages,
        "files": len(files),
        "bytes": sum(p.stat().st_size for p in files),
        "files_without_pycs": len(without_pycs),
        "bytes_without_pycs": sum(p.stat().st_size for p in without_pycs),
        "targz_bytes": targz_size(files),
        "targz_bytes_without_pycs": targz_size(without_pycs),
    }


# ---------------------------------------------------------------------------
# Report


@dataclass
class Target:
    what: str
    value_ms: float
    limit_ms: float

    @property
    def passed(self) -> bool:
        return self.value_ms <= self.limit_ms


@dataclass
class Results:
    samples: dict[str, dict[str, list[Sample]]]
    probes: dict[str, dict[str, dict[str, str]]]
    direct: dict[str, dict[str, Direct]]
    floor: Floor
    size: dict[str, Any]
    lines: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def add(self, line: str = "") -> None:
        self.lines.append(line)


def mb(size: int) -> str:
    return f"{size / 1e6:.2f} MB"


def report_act(ctx: Context, res: Results) -> None:
    add = res.add
    add("== Step time through act (ms), instant tbot ==")
    add(
        f"   {ctx.runs} timed runs per case after 1 warm-up, cases and modes interleaved; "
        "step = act's timing of the action's step"
    )
    add("   own overhead = step time - wall-clock time inside tbot (version + start)")
    add(f"   targets: own overhead <= 250 ms off, <= 300 ms on ({JS_ORIGINAL})")
    res.figures["act"] = {}
    for number, mode in enumerate(ctx.modes, 1):
        ws = ctx.workspaces[mode.key]
        probe = res.probes[mode.key]["off"]
        add()
        add(f"[{number}] {mode.label}")
        if mode.shipped_pycs:
            stale = f" ({', '.join(ws.compiled[:3])})" if ws.compiled else ""
            add(
                f"    {ws.pycs['present']} pycs in the workspace: {ws.pycs['valid']} of "
                f"{ws.pycs['modules']} modules had a valid pyc for this interpreter, "
                f"{ws.pycs['compiled']} compiled as checked-hash before timing{stale}"
            )
        written = ""
        if not mode.dontwrite:
            extra = int(probe["pycs"]) - ws.pycs["present"]
            written = f" ({extra} written by the step)" if extra else " (it wrote none)"
        add(
            f"    seen from inside the step: {probe['python']}, "
            f"PYTHONDONTWRITEBYTECODE={probe['dontwrite']}, "
            f"{probe['pycs']} pycs in its copy of the action{written}"
        )
        add(
            f"    {'case':<30} {'step med':>8} {'p90':>6} {'in tbot':>8} "
            f"{'own med':>8} {'p90':>6}  target"
        )
        figures: dict[str, Any] = {"probe": res.probes[mode.key], "workspace_pycs": ws.pycs}
        for case in cases_of(mode):
            rows = res.samples[mode.key][case.key]
            step = Stats.of([s.step for s in rows])
            tbot = Stats.of([s.tbot for s in rows])
            own = Stats.of([s.own for s in rows])
            mark = ""
            if case.target_ms is not None:
                mark = f"<= {case.target_ms:.0f}  "
                if mode.gated:
                    mark += verdict(own.median * 1000, case.target_ms)
                    what = f"[{number}] own overhead, {case.label}"
                    res.targets.append(Target(what, own.median * 1000, case.target_ms))
                else:
                    mark += "(informational)"
            add(
                f"    {case.label:<30} {ms(step.median):>8} {ms(step.p90):>6} "
                f"{ms(tbot.median):>8} {ms(own.median):>8} {ms(own.p90):>6}  {mark}"
            )
            figures[case.key] = {
                "step_ms": {"median": step.median * 1000, "p90": step.p90 * 1000},
                "tbot_ms": {"median": tbot.median * 1000, "p90": tbot.p90 * 1000},
                "own_overhead_ms": {"median": own.median * 1000, "p90": own.p90 * 1000},
                "samples_ms": [{"step": s.step * 1000, "tbot": s.tbot * 1000} for s in rows],
            }
        res.figures["act"][mode.key] = figures
        if mode.skip_hang:
            continue
        # Paired: the healthy and the never-answering run of a round ran back to back.
        pairs = zip(res.samples[mode.key]["healthy"], res.samples[mode.key]["hang"], strict=True)
        added = statistics.median(hang.step - healthy.step for healthy, hang in pairs) * 1000
        mark = f"<= {HANG_TARGET_MS:.0f}  "
        if mode.gated:
            mark += verdict(added, HANG_TARGET_MS)
            what = f"[{number}] never-answering endpoint adds"
            res.targets.append(Target(what, added, HANG_TARGET_MS))
        else:
            mark += "(informational)"
        add(
            f"    the never-answering endpoint adds {added:+.1f} ms over the healthy one "
            f"(median of per-round differences in step time)  target {mark}"
        )
        figures["hang_adds_ms"] = added
    paths = {p["action_path"] for p in res.probes[ctx.modes[0].key].values()}
    if len(paths) > 1:
        add()
        add(
            "   act gives every run a fresh copy of the action (GITHUB_ACTION_PATH differs from "
            "run to run),"
        )
        add(
            "   so bytecode one run writes is never read by the next: allowing the cache can "
            "only help"
        )
        add("   with what lies outside the action (the interpreter's own stdlib pycs).")


def report_breakdown(ctx: Context, res: Results) -> None:
    add = res.add
    floor = res.floor
    add("== Where the own overhead goes (ms, medians; the step also run directly, outside act) ==")
    add(
        f"   interpreter alone ({ctx.python} -I -S -c pass, as the step runs it): "
        f"{ms(floor.bare)} ms; with site (-I -c pass): {ms(floor.site)} ms, i.e. -S saves "
        f"{ms(floor.pth)} ms of this host's site-packages .pth files"
    )
    res.figures["startup_ms"] = {"bare": floor.bare * 1000, "with_site": floor.site * 1000}
    res.figures["breakdown"] = {}
    shown = [c for c in CASES if c.endpoint != "hang"]
    for number, mode in enumerate(ctx.modes, 1):
        if not mode.gated:
            continue
        add(f"[{number}] {mode.label}")
        rows: dict[str, list[str]] = {}
        res.figures["breakdown"][mode.key] = {}
        for case in shown:
            d = res.direct[mode.key][case.key]
            w = d.walls
            if w is None:
                raise BenchError(f"no direct runs for {mode.key}/{case.key}")
            own_act = statistics.median(s.own for s in res.samples[mode.key][case.key])
            parts = {
                "act's composite-step machinery (own through act - own direct)": own_act - w.own,
                "src/launch in bash (with a no-op interpreter)": w.launch_cost,
                "interpreter start-up (python -I -S -c pass)": floor.bare,
                "the action's imports (python -I -S -c 'import ...' - '... pass')": w.imports,
                "the action's work (config, 2 tbot spawns, outputs; remainder)": (
                    w.own - w.launch_cost - floor.bare - w.imports
                ),
                "= own overhead through act": own_act,
            }
            for label, value in parts.items():
                rows.setdefault(label, []).append(f"{ms(value):>24}")
            res.figures["breakdown"][mode.key][case.key] = {
                "own_direct_ms": w.own * 1000,
                "tbot_ms": w.tbot * 1000,
                "importtime_action_ms": d.profile.action_us / 1000,
                "parts_ms": {k: v * 1000 for k, v in parts.items()},
            }
        width = max(len(label) for label in rows) + 1
        add(f"    {'':<{width}}" + "".join(f"{c.label:>24}" for c in shown))
        for label, cells in rows.items():
            add(f"    {label:<{width}}{''.join(cells)}")


def import_lines(prof: ImportProfile, title: str) -> list[str]:
    width = 48
    lines = [f"    {title + ': top 5 by cumulative (ms)':<{width + 12}}top 5 by self (ms)"]
    for cumulative, own in zip(prof.top("cumulative"), prof.top("self"), strict=True):
        left = f"{'  ' * cumulative.depth}{cumulative.name}"
        right = own.name
        lines.append(
            f"      {cumulative.cumulative_us / 1000:>6.1f}  {left[:width]:<{width}}"
            f"{own.self_us / 1000:>6.1f}  {right[:width]}"
        )
    return lines


def report_imports(ctx: Context, res: Results) -> None:
    add = res.add
    add(
        "== Import time of the Python step (-X importtime; src/launch run directly with "
        f"TELEPORT_AUTH_PYTHON adding it; median of {IMPORTTIME_RUNS}) =="
    )
    add(
        "   start-up = the interpreter's own imports (encodings, io, ...) before "
        "src/run_action.py's; action = all after"
    )
    add("   (indentation: nesting; the never-answering case imports what the healthy one does)")
    res.figures["importtime"] = {}
    for number, mode in enumerate(ctx.modes, 1):
        add(f"[{number}] {mode.label}")
        add(f"    {'case':<30} {'total':>7} {'start-up':>9} {'action':>7} {'step wall':>10}   (ms)")
        res.figures["importtime"][mode.key] = {}
        for case in cases_of(mode):
            prof = res.direct[mode.key][case.key].profile
            add(
                f"    {case.label:<30} {prof.total_us / 1000:>7.1f} "
                f"{prof.startup_us / 1000:>9.1f} {prof.action_us / 1000:>7.1f} "
                f"{ms(prof.wall):>10}"
            )
            res.figures["importtime"][mode.key][case.key] = {
                "total_ms": prof.total_us / 1000,
                "startup_ms": prof.startup_us / 1000,
                "action_ms": prof.action_us / 1000,
                "process_wall_ms": prof.wall * 1000,
                "top5_cumulative": [
                    [e.name, e.cumulative_us / 1000, e.depth] for e in prof.top("cumulative")
                ],
                "top5_self": [[e.name, e.self_us / 1000, e.depth] for e in prof.top("self")],
            }
        if not mode.show_tops:
            add("    (top 5 lists as in [1])")
            continue
        for case in CASES:
            if case.endpoint != "hang":
                res.lines += import_lines(res.direct[mode.key][case.key].profile, case.label)


def report_size(res: Results) -> None:
    add = res.add
    size = res.size
    add(f"== What the action ships ({', '.join(str(s) for s in SHIPPED)}) ==")
    add(f"    {'':<20} {'files':>6} {'bytes':>12} {'pyc files':>10} {'pyc bytes':>12}")
    for part, entry in size["parts"].items():
        add(
            f"    {part:<20} {entry['src_files']:>6} {entry['src_bytes']:>12,} "
            f"{entry['pyc_files']:>10} {entry['pyc_bytes']:>12,}"
        )
    add(
        f"    total: {size['files']} files, {mb(size['bytes'])} "
        f"(without pycs: {size['files_without_pycs']} files, {mb(size['bytes_without_pycs'])})"
    )
    add(
        f"    as .tar.gz (what a runner downloads): {mb(size['targz_bytes'])} "
        f"(without pycs: {mb(size['targz_bytes_without_pycs'])})"
    )
    largest = sorted(
        size["packages"].items(),
        key=lambda item: int(item[1]["src_bytes"] + item[1]["pyc_bytes"]),
        reverse=True,
    )[:6]
    add("    largest in _vendor/ (sources + pycs):")
    for name, entry in largest:
        total = entry["src_bytes"] + entry["pyc_bytes"]
        add(f"      {name:<26} {mb(total):>9}  ({mb(entry['pyc_bytes'])} of it pycs)")
    res.figures["ship_size"] = size


def report_targets(res: Results, elapsed: float) -> None:
    add = res.add
    add("== Targets ==")
    for target in res.targets:
        over = target.value_ms - target.limit_ms
        add(
            f"    {'PASS' if target.passed else 'FAIL'}  {target.what}: "
            f"{target.value_ms:.1f} ms (target <= {target.limit_ms:.0f} ms"
            + ("" if target.passed else f", over by {over:.1f} ms")
            + ")"
        )
    missed = [t for t in res.targets if not t.passed]
    add("    all targets met" if not missed else f"    {len(missed)} missed: exit status 1")
    add(f"    (the benchmark took {elapsed:.0f} s)")
    res.figures["targets"] = [
        {"what": t.what, "value_ms": t.value_ms, "limit_ms": t.limit_ms, "passed": t.passed}
        for t in res.targets
    ]


def report(ctx: Context, res: Results, elapsed: float) -> None:
    res.add()
    report_act(ctx, res)
    res.add()
    report_breakdown(ctx, res)
    res.add()
    report_imports(ctx, res)
    res.add()
    report_size(res)
    res.add()
    report_targets(res, elapsed)


def header(ctx: Context) -> list[str]:
    act = subprocess.run(
        [act_binary(), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return [
        "teleport-actions/auth step-time benchmark (benchmarks/step_time.py)",
        f"  date         {datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC",
        f"  machine      {platform.node()}: {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs (nproc: {len(os.sched_getaffinity(0))})",
        f"  interpreter  {ctx.python} (CPython {ctx.python_version})",
        "               an ELF binary, not a shim; the step gets it as TELEPORT_AUTH_PYTHON "
        "and as python3 first on PATH",
        f"               (this script runs {sys.executable})",
        f"  act          {act}, -P ubuntu-latest=-self-hosted, demo/workflow.yml",
        "  tbot         an instant POSIX sh stand-in; time inside it from its own date +%s%N",
        f"  endpoints    healthy: {ctx.healthy_kind} at {ctx.urls['healthy']}; "
        f"never answering: tests/fault_server.py FaultServer('hang') at {ctx.urls['hang']}",
        f"  host env     PYTHONDONTWRITEBYTECODE="
        f"{os.environ.get('PYTHONDONTWRITEBYTECODE', '<unset>')} "
        "(set per mode below for the act process, which the self-hosted job inherits)",
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="timed runs per case (default 10)")
    parser.add_argument("--quick", action="store_true", help="3 runs per case")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the figures here")
    parser.add_argument(
        "--modes",
        default=",".join(m.key for m in MODES),
        help="bytecode modes to run, comma-separated (default: all of "
        + ", ".join(m.key for m in MODES)
        + ")",
    )
    parser.add_argument("--python", help="the interpreter to measure (default: the real one)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    runs = 3 if args.quick else args.runs
    if runs < 1:
        parser.error("--runs must be at least 1")
    wanted = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(wanted) - {m.key for m in MODES}
    if unknown or not wanted:
        parser.error(f"unknown modes: {', '.join(sorted(unknown)) or '(none given)'}")

    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="teleport-auth-bench-"))
    try:
        python = resolve_python(args.python)
        ctx = Context(
            python=python,
            python_version=interpreter_version(python),
            work=work,
            bin_dir=work / "bin",
            pythons=install_pythons(work / "pythons", python),
            runs=runs,
            modes=tuple(m for m in MODES if m.key in wanted),
        )
        install_bin(ctx.bin_dir, python)
        for mode in ctx.modes:
            ctx.workspaces[mode.key] = make_workspace(ctx, mode)
        say(f"work directory {work}; workspaces ready")
        with contextlib.ExitStack() as stack:
            ctx.urls["hang"] = start_fault_server("hang", stack)
            collector = start_healthy_collector(work, stack)
            if collector is not None:
                ctx.urls["healthy"], ctx.healthy_kind = collector, "teleport_auth.collector"
                try:  # one direct opted-in run: does the collector confirm the event?
                    direct_run(ctx, ctx.modes[0], CASES[1])
                except BenchError as exc:
                    say(f"the collector did not confirm an event, using FaultServer('ok'): {exc}")
                    collector = None
            if collector is None:
                ctx.urls["healthy"] = start_fault_server("ok", stack)
                ctx.healthy_kind = "tests/fault_server.py FaultServer('ok') (collector not ready)"
            say(f"healthy endpoint: {ctx.healthy_kind}")
            samples, probes = act_rounds(ctx)
            floor = startup_floor(ctx)
            direct = direct_measurements(ctx)
        res = Results(samples, probes, direct, floor, ship_size())
        report(ctx, res, time.monotonic() - started)
        head = header(ctx)
        print("\n".join(head + res.lines), flush=True)
        if args.json:
            res.figures["meta"] = {"header": head, "runs": runs, "python": python}
            args.json.write_text(json.dumps(res.figures, indent=2) + "\n", encoding="utf-8")
            print(f"figures written to {args.json}")
        return 0 if all(t.passed for t in res.targets) else 1
    except (BenchError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        print(f"bench: could not measure: {exc}", file=sys.stderr)
        return 2
    finally:
        if args.keep:
            say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
