"""The step run directly through src/launch (outside act): import times and the breakdown."""

from __future__ import annotations

import itertools
import os
import statistics
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from steptime.act_runs import log_tail
from steptime.context import Context
from steptime.instant_tbot import tbot_seconds
from steptime.model import BenchError, Case, Mode, cases_of, say
from steptime.stats import median_difference

OIDC_URL = "http://127.0.0.1:9/oidc-not-available-under-act"
IMPORTTIME_RUNS = 3


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
    node: float | None = None  # node -e 0, the original's runtime alone (with --anchor)
    node_host: float | None = None  # the same with the host-only variables put back

    @property
    def pth(self) -> float:
        return self.site - self.bare


def startup_floor(ctx: Context) -> Floor:
    """The runtimes alone, importing nothing of ours (medians, interleaved): the
    interpreter with and without site, and the node that ran the original."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    commands = {
        "-S": [ctx.python, "-I", "-S", "-c", "pass"],
        "site": [ctx.python, "-I", "-c", "pass"],
    }
    if ctx.anchor is not None and ctx.anchor.node:
        commands["node"] = [ctx.anchor.node, "-e", "0"]
        if ctx.dropped:
            commands["node_host"] = commands["node"]
    walls: dict[str, list[float]] = {key: [] for key in commands}
    for _ in range(max(ctx.runs, 5)):
        for key, argv in commands.items():
            run_env = {**env, **ctx.dropped} if key == "node_host" else env
            started = time.perf_counter()
            subprocess.run(argv, env=run_env, check=True, timeout=60)
            walls[key].append(time.perf_counter() - started)
    medians = {key: statistics.median(values) for key, values in walls.items()}
    return Floor(medians["-S"], medians["site"], medians.get("node"), medians.get("node_host"))


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


def step_modules(profile: ImportProfile) -> list[str]:
    """What the step itself imported: the top-level imports after the interpreter's own."""
    top = [e.name for e in profile.entries if e.depth == 0]
    if "runpy" in top:
        start = top.index("runpy") + 1
    else:
        start = next((i for i, n in enumerate(top) if n.startswith("teleport_auth")), len(top))
    return top[start:] or ["teleport_auth.main"]


def import_code(ws: Path, mode: Mode, modules: Sequence[str]) -> str:
    """The step's imports alone, on the paths src/run_action.py gives it."""
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
                    import_code(ctx.workspaces[mode.key].path, mode, step_modules(direct.profile)),
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
