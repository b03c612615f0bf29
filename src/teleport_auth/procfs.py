"""What Linux's /proc says about a process: the fields of ``/proc/<pid>/stat``.

Both the end-of-job step (is this still the tbot the step started?) and the
readiness check (which processes belong to tbot's session?) read that line.
"""

from __future__ import annotations

from pathlib import Path


def stat_fields(process_dir: Path) -> list[str] | None:
    """The fields of ``<process_dir>/stat`` after the command name: state, ppid, pgrp,
    session, ... (``man 5 proc``); None when the process is gone or unreadable."""
    try:
        stat = (process_dir / "stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    return stat.rpartition(")")[2].split()


def start_ticks(pid: int, proc: Path = Path("/proc")) -> int | None:
    """The process's start time in clock ticks since boot; None if it is gone or a zombie."""
    fields = stat_fields(proc / str(pid))
    if fields is None or len(fields) < 20 or fields[0] == "Z" or not fields[19].isdigit():
        return None
    return int(fields[19])
