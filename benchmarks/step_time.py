#!/usr/bin/env python3
"""Step-time benchmark: the real action.yml through act on this host, with an instant tbot.

Usage: ``python3 scripts/dev bench [--runs N | --quick] [--json PATH] [--modes M,...]
[--python PATH] [--anchor PATH] [--keep]``

For each case (telemetry off; on with a healthy local collector; on with an
endpoint that accepts and never answers) and each bytecode mode (the shipped
checked-hash pycs with PYTHONDONTWRITEBYTECODE=1, as these machines and a fresh
hosted runner; the same with the bytecode cache allowed; no pycs at all) it runs
the demo workflow through ``act -P ubuntu-latest=-self-hosted`` N times after one
warm-up round, every variant once per round, and prints:

* median and p90 of act's timing of the action's step;
* the action's own overhead: step time minus the wall-clock time spent inside
  tbot (the instant tbot records the start and end of each invocation);
* with a tbot that works 1 s: what opting in adds to the step, and whether the
  event is printed before tbot's output;
* with ``--anchor PATH`` (a checkout of the original JavaScript action): the
  original through the same act set-up and instant tbot in the same rounds, and
  this project's own overhead over the original's, telemetry off;
* where the own overhead goes, from the same step run directly through src/launch
  (outside act), and the Python step's import time (``-X importtime``: totals and
  the top 5 modules);
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
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from steptime.act_runs import act_rounds
from steptime.anchor import prepare_anchor
from steptime.context import Context
from steptime.direct import direct_measurements, direct_run, startup_floor
from steptime.harness import REPO, SHIPPED, act_binary
from steptime.model import HEALTHY, MODES, BenchError, say
from steptime.prepare import (
    drop_host_only_variables,
    install_bin,
    install_pythons,
    interpreter_version,
    make_workspace,
    resolve_python,
    start_fault_server,
    start_healthy_collector,
)
from steptime.report import Results, report_act, report_anchor, report_slow, report_targets
from steptime.report_profile import report_breakdown, report_imports, report_size
from steptime.ship_size import ship_size


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min), {five:.2f} (5 min)"


def revision() -> str:
    """The commit measured, and whether what the action ships differs from it."""
    git = ["git", "-C", str(REPO)]
    head = subprocess.run(
        [*git, "log", "-1", "--format=%h %cd", "--date=short"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    changed = subprocess.run(
        [*git, "status", "--porcelain", "--", *[s for s in SHIPPED if s != "_vendor"]],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    dirty = f", plus uncommitted changes in {len(changed)} shipped files" if changed else ""
    return f"{head or '(not a git checkout)'}{dirty}"


def header(ctx: Context, load_at_start: str) -> list[str]:
    act = subprocess.run(
        [act_binary(), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    lines = [
        "teleport-actions/auth step-time benchmark (benchmarks/step_time.py)",
        f"  date         {datetime.now(timezone.utc):%Y-%m-%d %H:%M:%S} UTC",
        f"  machine      {platform.node()}: {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs (nproc: {len(os.sched_getaffinity(0))})",
        f"  code         {revision()}",
        f"  load average at the start {load_at_start}; at the end {load()}",
        f"  interpreter  {ctx.python} (CPython {ctx.python_version})",
        "               an ELF binary, not a shim; the step gets it as TELEPORT_AUTH_PYTHON "
        "and as python3 first on PATH",
        f"               (this script runs {sys.executable})",
        f"  act          {act}, -P ubuntu-latest=-self-hosted, demo/workflow.yml",
        "  tbot         an instant POSIX sh script; time inside it from its own date +%s%N",
        f"  endpoints    healthy: {ctx.healthy_kind} at {ctx.urls['healthy']}; "
        f"never answering: tests/fault_server.py FaultServer('hang') at {ctx.urls['hang']}",
        f"  host env     PYTHONDONTWRITEBYTECODE="
        f"{os.environ.get('PYTHONDONTWRITEBYTECODE', '<unset>')} "
        "(set per mode below for the act process, which the self-hosted job inherits)",
    ]
    if ctx.dropped:
        lines.append(
            f"               removed for every run: {', '.join(ctx.dropped)} (this host's, "
            "not a hosted runner's)"
        )
    if ctx.anchor is not None:
        lines.append(
            f"  original     {ctx.anchor.source} ({ctx.anchor.revision}), "
            f"{ctx.anchor.using_note}, node: {ctx.anchor.node} {ctx.anchor.node_version}"
        )
    return lines


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
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
    parser.add_argument(
        "--anchor",
        type=Path,
        metavar="PATH",
        help="a checkout of the original action: run it side by side, print project/original",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    args.runs = 3 if args.quick else args.runs
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    wanted = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(wanted) - {m.key for m in MODES}
    if unknown or not wanted:
        parser.error(f"unknown modes: {', '.join(sorted(unknown)) or '(none given)'}")
    args.modes = tuple(m for m in MODES if m.key in wanted)
    return args


def measure(ctx: Context) -> Results:
    """Everything that runs the step; endpoints up for exactly as long."""
    with contextlib.ExitStack() as stack:
        ctx.urls["hang"] = start_fault_server("hang", stack)
        collector = start_healthy_collector(ctx.work, stack)
        if collector is not None:
            ctx.urls["healthy"], ctx.healthy_kind = collector, "tbot_collector"
            try:  # one direct opted-in run: does the collector confirm the event?
                direct_run(ctx, ctx.modes[0], HEALTHY)
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
    return Results(samples, probes, direct, floor, ship_size())


def report(ctx: Context, res: Results, elapsed: float) -> None:
    steps = [report_act, report_slow, report_anchor, report_breakdown, report_imports]
    for step in steps:
        if step is report_anchor and ctx.anchor is None:
            continue
        res.add()
        step(ctx, res)
    res.add()
    report_size(res)
    res.add()
    report_targets(res, elapsed)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    load_at_start = load()
    work = Path(tempfile.mkdtemp(prefix="teleport-auth-bench-"))
    try:
        python = resolve_python(args.python)
        ctx = Context(
            python=python,
            python_version=interpreter_version(python),
            work=work,
            bin_dir=work / "bin",
            pythons=install_pythons(work / "pythons", python),
            runs=args.runs,
            modes=args.modes,
        )
        ctx.dropped = drop_host_only_variables()
        install_bin(ctx.bin_dir, python)
        for mode in ctx.modes:
            ctx.workspaces[mode.key] = make_workspace(python, work, mode)
        if args.anchor is not None:
            ctx.anchor = prepare_anchor(args.anchor.resolve(), work / "original")
        say(f"work directory {work}; workspaces ready")
        res = measure(ctx)
        report(ctx, res, time.monotonic() - started)
        head = header(ctx, load_at_start)
        print("\n".join(head + res.lines), flush=True)
        if args.json:
            res.figures["meta"] = {"header": head, "runs": ctx.runs, "python": python}
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
