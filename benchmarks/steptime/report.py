"""What is printed about the act runs: step times, the 1 s tbot, the original, the targets."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from steptime.context import Context
from steptime.direct import Direct, Floor
from steptime.model import (
    HANG_TARGET_MS,
    RATIO_TARGET,
    SLOW_TARGET_MS,
    SLOW_TBOT_SECONDS,
    Sample,
    cases_of,
    ms,
)
from steptime.stats import Stats, Target, median_difference, verdict

HEAD = f"    {'':<34} {'step med':>8} {'p90':>6} {'in tbot':>8} {'own med':>8} {'p90':>6}"


@dataclass
class Results:
    samples: dict[str, list[Sample]]  # by variant key
    probes: dict[str, dict[str, str]]  # by variant key (the warm-up runs)
    direct: dict[str, dict[str, Direct]]
    floor: Floor
    size: dict[str, Any]
    lines: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def add(self, line: str = "") -> None:
        self.lines.append(line)

    def target(self, target: Target, gated: bool = True) -> str:
        """Record a target (when judged) and return its mark for the table."""
        limit = target.show(target.limit)
        if not gated:
            return f"target <= {limit} (informational)"
        self.targets.append(target)
        return f"target <= {limit} {verdict(target.value, target.limit)}"


def row(res: Results, label: str, rows: list[Sample], mark: str = "") -> dict[str, Any]:
    """One table line: step, time in tbot and own overhead; returns the figures."""
    step = Stats.of([s.step for s in rows])
    tbot = Stats.of([s.tbot for s in rows])
    own = Stats.of([s.own for s in rows])
    res.add(
        f"    {label:<34} {ms(step.median):>8} {ms(step.p90):>6} "
        f"{ms(tbot.median):>8} {ms(own.median):>8} {ms(own.p90):>6}  {mark}".rstrip()
    )
    return {
        "step_ms": {"median": step.median * 1000, "p90": step.p90 * 1000},
        "tbot_ms": {"median": tbot.median * 1000, "p90": tbot.p90 * 1000},
        "own_overhead_ms": {"median": own.median * 1000, "p90": own.p90 * 1000},
        "samples_ms": [{"step": s.step * 1000, "tbot": s.tbot * 1000} for s in rows],
    }


def report_act(ctx: Context, res: Results) -> None:
    add = res.add
    add("== Step time through act (ms), instant tbot ==")
    add(
        f"   {ctx.runs} timed runs per variant after 1 warm-up, every variant once per round "
        "(odd rounds in reverse order)"
    )
    add("   step = act's timing of the action's step; own overhead = step - time inside tbot")
    add("   targets: own overhead <= 250 ms off, <= 300 ms on (modes marked gated)")
    res.figures["act"] = {}
    for number, mode in enumerate(ctx.modes, 1):
        ws = ctx.workspaces[mode.key]
        probe = res.probes[f"{mode.key}/off"]
        add()
        add(f"[{number}] {mode.label}" + (" (gated)" if mode.gated else ""))
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
            f"    seen from inside the step: {probe['parent']}, "
            f"PYTHONDONTWRITEBYTECODE={probe['dontwrite']}, "
            f"{probe['pycs']} pycs in its copy of the action{written}"
        )
        add(HEAD)
        probes = {c.key: res.probes[f"{mode.key}/{c.key}"] for c in cases_of(mode)}
        figures: dict[str, Any] = {"probe": probes, "workspace_pycs": ws.pycs}
        for case in cases_of(mode):
            rows = res.samples[f"{mode.key}/{case.key}"]
            mark = ""
            if case.target_ms is not None:
                own = statistics.median(s.own for s in rows) * 1000
                what = f"[{number}] own overhead, {case.label}"
                mark = res.target(Target(what, own, case.target_ms), mode.gated)
            figures[case.key] = row(res, case.label, rows, mark)
        res.figures["act"][mode.key] = figures
        if mode.skip_hang:
            continue
        # Paired: the healthy and the never-answering run of a round ran back to back.
        added = median_difference(
            [s.step for s in res.samples[f"{mode.key}/hang"]],
            [s.step for s in res.samples[f"{mode.key}/healthy"]],
        )
        what = f"[{number}] never-answering endpoint adds"
        mark = res.target(Target(what, added * 1000, HANG_TARGET_MS), mode.gated)
        add(
            f"    the never-answering endpoint adds {added * 1000:+.1f} ms over the healthy one "
            f"(median of per-round differences in step time)  {mark}"
        )
        figures["hang_adds_ms"] = added * 1000
    paths = {
        p["action_path"] for key, p in res.probes.items() if key.startswith(f"{ctx.modes[0].key}/")
    }
    if len(paths) > 1:
        add()
        add("   act gives every run a fresh copy of the action (GITHUB_ACTION_PATH differs from")
        add("   run to run), so bytecode one run writes is never read by the next: allowing the")
        add("   cache can only help with what lies outside the action (the stdlib's pycs).")


def report_slow(ctx: Context, res: Results) -> None:
    """Point 12: with a tbot that works 1 s, opting in costs (almost) nothing."""
    add = res.add
    ref = ctx.reference
    off, on = res.samples["slow/off"], res.samples["slow/healthy"]
    add(f"== Telemetry while tbot works: tbot takes {SLOW_TBOT_SECONDS:g} s (ms) ==")
    add(
        f"   [{ctx.modes.index(ref) + 1}] {ref.key}; opted out and opted in (healthy collector) "
        f"in every round, {len(off)} runs each"
    )
    add(HEAD)
    figures: dict[str, Any] = {
        "off": row(res, "off", off),
        "on": row(res, "on, healthy collector", on),
    }
    step_off = statistics.median(s.step for s in off)
    step_on = statistics.median(s.step for s in on)
    added = (step_on - step_off) * 1000
    paired = median_difference([s.step for s in on], [s.step for s in off]) * 1000
    own = (statistics.median(s.own for s in on) - statistics.median(s.own for s in off)) * 1000
    mark = res.target(
        Target(f"{SLOW_TBOT_SECONDS:g} s tbot: opting in adds to the step", added, SLOW_TARGET_MS),
        ref.gated,
    )
    add(f"    opting in adds {added:+.1f} ms to the step (on median - off median)  {mark}")
    add(f"      median of per-round differences {paired:+.1f} ms; own-overhead medians {own:+.1f}")
    late = sum(1 for s in on if not s.event_first)
    mark = res.target(
        Target(
            "1 s tbot: runs where the event was not printed before tbot's output", late, 0, "runs"
        ),
        ref.gated,
    )
    add(
        f"    the event was printed before tbot's first line in {len(on) - late}/{len(on)} "
        f"runs  {mark}"
    )
    figures.update(
        adds_ms=added,
        adds_paired_ms=paired,
        adds_own_ms=own,
        event_first_runs=len(on) - late,
        runs=len(on),
    )
    res.figures["slow_tbot"] = figures


def report_anchor(ctx: Context, res: Results) -> None:
    """Point 13: this project's own overhead over the original's, telemetry off."""
    anchor = ctx.anchor
    if anchor is None:
        return
    add = res.add
    ref = ctx.reference
    ours, theirs = res.samples[f"{ref.key}/off"], res.samples["original/off"]
    add("== Side by side with the original action (--anchor), telemetry off, instant tbot (ms) ==")
    add(f"   original: {anchor.source} at {anchor.revision}")
    add(f"   {anchor.using_note}; run by {anchor.node} {anchor.node_version}")
    add(
        f"   both through the same act, workflow (demo/workflow.yml), instant tbot and job env, "
        f"{len(ours)} runs each in the same rounds (next to this project's opted-out run)"
    )
    add(f"   this project in [{ctx.modes.index(ref) + 1}] {ref.key}")
    add(HEAD)
    figures: dict[str, Any] = {
        "project": row(res, "this project (Python)", ours),
        "original": row(res, "original (JavaScript)", theirs),
    }
    own_ours = statistics.median(s.own for s in ours)
    own_theirs = statistics.median(s.own for s in theirs)
    ratio = own_ours / own_theirs
    step_ratio = statistics.median(s.step for s in ours) / statistics.median(s.step for s in theirs)
    paired = statistics.median(a.own / b.own for a, b in zip(ours, theirs, strict=True))
    what = "project/original own overhead, telemetry off"
    mark = res.target(Target(what, ratio, RATIO_TARGET, ""), ref.gated)
    add(f"    ratio project/original (own-overhead medians): {ratio:.2f}  {mark}")
    add(f"      step-time medians: {step_ratio:.2f}; median of per-round ratios: {paired:.2f}")
    need = RATIO_TARGET * own_theirs
    if own_ours > need:
        add(
            f"    to meet it this project's own overhead must be <= {need * 1000:.0f} ms "
            f"({RATIO_TARGET} x {own_theirs * 1000:.0f}): {1000 * (own_ours - need):.0f} ms less"
        )
    if res.floor.node is not None:
        add(
            f"    runtimes alone on this host: node -e 0 {ms(res.floor.node)} ms, "
            f"python -I -S -c pass {ms(res.floor.bare)} ms (medians, interleaved)"
        )
    if res.floor.node_host is not None:
        names = ", ".join(ctx.dropped)
        add(
            f"    {names} (set on this host, not on GitHub's hosted runners) was removed from "
            f"the job's environment: with it node -e 0 takes {ms(res.floor.node_host)} ms"
        )
    figures.update(
        ratio_own=ratio,
        ratio_step=step_ratio,
        ratio_paired=paired,
        using=anchor.using,
        ran_as=anchor.ran_as,
        node=f"{anchor.node} {anchor.node_version}",
        revision=anchor.revision,
        node_floor_ms=None if res.floor.node is None else res.floor.node * 1000,
        node_floor_with_host_variables_ms=(
            None if res.floor.node_host is None else res.floor.node_host * 1000
        ),
        dropped_variables=list(ctx.dropped),
    )
    res.figures["anchor"] = figures


def report_targets(res: Results, elapsed: float) -> None:
    add = res.add
    add("== Targets ==")
    for target in res.targets:
        over = target.value - target.limit
        add(
            f"    {'PASS' if target.passed else 'FAIL'}  {target.what}: "
            f"{target.show(target.value)} (target <= {target.show(target.limit)}"
            + ("" if target.passed else f", over by {target.show(over)}")
            + ")"
        )
    missed = [t for t in res.targets if not t.passed]
    add("    all targets met" if not missed else f"    {len(missed)} missed: exit status 1")
    add(f"    (the benchmark took {elapsed:.0f} s)")
    res.figures["targets"] = [
        {"what": t.what, "value": t.value, "limit": t.limit, "unit": t.unit, "passed": t.passed}
        for t in res.targets
    ]
