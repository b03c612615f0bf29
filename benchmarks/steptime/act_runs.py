"""Runs through act: every variant once per round, rounds interleaved, one warm-up round."""

from __future__ import annotations

import os
import time
from pathlib import Path

from steptime.anchor import describe_node, refused_using, rewrite_using
from steptime.context import Context
from steptime.harness import ActRun, run_act
from steptime.instant_tbot import event_printed_first, read_probe, tbot_seconds
from steptime.model import BenchError, Sample, Variant, say
from steptime.prepare import bytecode_setting

Samples = dict[str, list[Sample]]
Probes = dict[str, dict[str, str]]


def log_tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def run_variant(ctx: Context, variant: Variant, times: Path, probe: Path | None) -> ActRun:
    env = {"TELEPORT_AUTH_PYTHON": ctx.python, "BENCH_TBOT_TIMES": str(times)}
    if variant.case.endpoint:
        env["TELEPORT_ANONYMOUS_TELEMETRY_ADDRESS"] = ctx.urls[variant.case.endpoint]
    if variant.tbot_sleep:
        env["BENCH_TBOT_SLEEP"] = f"{variant.tbot_sleep:g}"
    if probe is not None:
        env["BENCH_TBOT_PROBE"] = str(probe)
    with bytecode_setting(variant.mode.dontwrite):
        run: ActRun = run_act(
            variant.workspace,
            bin_dir=ctx.bin_dir,
            telemetry=variant.case.telemetry,
            env=env,
            timeout=120,
        )
    return run


def act_once(ctx: Context, variant: Variant, tag: str, probe: Path | None = None) -> Sample:
    times = ctx.work / "times" / f"{variant.key.replace('/', '-')}-{tag}"
    times.parent.mkdir(exist_ok=True)
    run = run_variant(ctx, variant, times, probe)
    known = refused_using(run.log) if variant.original and tag == "warmup" else None
    if ctx.anchor is not None and known is not None:
        rewrite_using(ctx.anchor, known)
        say(f"act refused the original's runs.using; running it as {ctx.anchor.ran_as}")
        times.unlink(missing_ok=True)
        run = run_variant(ctx, variant, times, probe)
    log: str = run.log
    if not run.succeeded or variant.case.expect not in log:
        raise BenchError(
            f"act run {variant.key} did not do what it should (exit {run.returncode}, "
            f"expected {variant.case.expect!r} in the log):\n{log_tail(log)}"
        )
    first = event_printed_first(log.splitlines()) if variant.case.telemetry == "true" else None
    step: float = run.step_seconds
    return Sample(step, tbot_seconds(times), first)


def check_probe(ctx: Context, variant: Variant, probe: dict[str, str]) -> None:
    """What the step really ran with, seen from inside it (tbot's parent is the step)."""
    if variant.original:
        if ctx.anchor is None or not os.path.basename(probe.get("parent", "")).startswith("node"):
            raise BenchError(f"the original ran under {probe.get('parent')!r}, not node")
        describe_node(ctx.anchor, probe)
        return
    mode = variant.mode
    problems = []
    if os.path.realpath(probe.get("parent", "")) != ctx.python:
        problems.append(f"the step ran {probe.get('parent')!r}, not {ctx.python}")
    want = "1" if mode.dontwrite else "<unset>"
    if probe.get("dontwrite") != want:
        problems.append(f"PYTHONDONTWRITEBYTECODE in the step is {probe.get('dontwrite')!r}")
    pycs = int(probe.get("pycs", "-1"))
    if mode.shipped_pycs and pycs <= 0:
        problems.append("the step's copy of the action has no pycs")
    if not mode.shipped_pycs and pycs != 0:
        problems.append(f"the step's copy of the action has {pycs} pycs (expected none)")
    if problems:
        raise BenchError(f"{variant.key}: " + "; ".join(problems))


def act_rounds(ctx: Context) -> tuple[Samples, Probes]:
    """One warm-up round (with probes), then ``ctx.runs`` timed rounds.

    Every round runs each variant once; odd rounds run them in reverse order, so no
    variant always follows the same one.
    """
    variants = ctx.variants()
    samples: Samples = {v.key: [] for v in variants}
    probes: Probes = {}
    for index in range(ctx.runs + 1):
        started = time.monotonic()
        order = variants if index % 2 == 0 else variants[::-1]
        for variant in order:
            if index == 0:
                probe_path = ctx.work / "times" / f"probe-{variant.key.replace('/', '-')}"
                act_once(ctx, variant, "warmup", probe_path)
                probes[variant.key] = read_probe(probe_path)
                check_probe(ctx, variant, probes[variant.key])
            else:
                samples[variant.key].append(act_once(ctx, variant, str(index)))
        label = "warm-up" if index == 0 else f"{index}/{ctx.runs}"
        say(f"act round {label}: {time.monotonic() - started:.1f} s")
    return samples, probes
