"""What is printed about where the time goes: the breakdown, import times, the ship size."""

from __future__ import annotations

import statistics

from steptime.context import Context
from steptime.direct import IMPORTTIME_RUNS, ImportProfile
from steptime.harness import SHIPPED
from steptime.model import CASES, BenchError, cases_of, ms
from steptime.report import Results


def mb(size: int) -> str:
    return f"{size / 1e6:.2f} MB"


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
            own_act = statistics.median(s.own for s in res.samples[f"{mode.key}/{case.key}"])
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
