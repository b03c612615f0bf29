"""A daemon's tbot log shown in the job's log: whole, bounded, unable to act on the job."""

from __future__ import annotations

import os
from pathlib import Path

from teleport_auth import gha
from teleport_auth.relay import LineRelay

# Beyond this, only the log's end is shown (the file itself is left whole).
SHOW_LIMIT = 1024 * 1024


def read_end(path: Path, limit: int = SHOW_LIMIT) -> tuple[bytes, int]:
    """The last ``limit`` bytes of the file (from a line start if cut), and how many were left out.

    Raises OSError if the file cannot be read.
    """
    with path.open("rb") as f:
        size = f.seek(0, os.SEEK_END)
        skipped = max(0, size - limit)
        f.seek(skipped)
        data = f.read(limit)
    if skipped:
        # Start at a whole line: the cut one would be half a message.
        newline = data.find(b"\n")
        if 0 <= newline < len(data) - 1:
            skipped += newline + 1
            data = data[newline + 1 :]
    return data, skipped


def show(path: Path, title: str = "tbot log", limit: int = SHOW_LIMIT) -> bool:
    """tbot's log in a group, workflow commands stopped. False (with a warning) if unreadable."""
    try:
        data, skipped = read_end(path, limit)
    except OSError as exc:
        gha.warning(f"Could not read tbot's log {path}: {exc.strerror or exc}.")
        return False
    with gha.group(title):
        if skipped:
            gha.info(f"(the first {skipped} bytes are left out here; the whole log is {path})")
        with gha.commands_stopped():
            relay = LineRelay(lambda text, _line_start: gha.info(text))
            relay.feed(data)
            relay.close()
    return True
