"""What the benchmark runs: bytecode modes, cases, variants (one kind of act run), samples."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

HANG_TARGET_MS = 1000.0
SLOW_TBOT_SECONDS = 1.0
SLOW_TARGET_MS = 20.0  # opting in adds at most this to the step while a 1 s tbot works
RATIO_TARGET = 0.7  # this project's own overhead / the original's, telemetry off


class BenchError(RuntimeError):
    """The benchmark could not measure what it meant to (not a missed target)."""


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


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
OFF = Case("off", "telemetry off", "false", None, 250.0, "Anonymous telemetry is not enabled.")
HEALTHY = Case("healthy", "on, healthy collector", "true", "healthy", 300.0, "on: event sent to")
HANG = Case("hang", "on, never-answering endpoint", "true", "hang", None, "(deadline_exceeded)")
CASES = (OFF, HEALTHY, HANG)
# The original prints nothing of ours: the demo workflow's next step shows its output.
ORIGINAL_OFF = Case(
    "original-off", "original, telemetry off", "false", None, None, "output identity-file=/"
)


def cases_of(mode: Mode) -> list[Case]:
    return [c for c in CASES if not (mode.skip_hang and c.endpoint == "hang")]


def reference_mode(modes: tuple[Mode, ...]) -> Mode:
    """The mode the 1 s-tbot and side-by-side runs use: the first with targets."""
    return next((m for m in modes if m.gated), modes[0])


@dataclass(frozen=True)
class Variant:
    """One kind of act run: which action, in which workspace and mode, which case."""

    key: str
    label: str
    mode: Mode
    case: Case
    workspace: Path
    original: bool = False  # the original JavaScript action (--anchor)
    tbot_sleep: float = 0.0  # seconds the instant tbot works in `tbot start`


@dataclass(frozen=True)
class Sample:
    step: float  # act's timing of the action's step
    tbot: float  # wall-clock time inside tbot (version + start)
    event_first: bool | None = None  # opted in: the event was printed before tbot's output

    @property
    def own(self) -> float:
        return self.step - self.tbot


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
