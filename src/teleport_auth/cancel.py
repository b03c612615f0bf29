"""Cancellation: SIGINT, SIGTERM or SIGHUP sent to the step becomes one clean failure.

The runner cancels a job (or a step's timeout fires) by signalling the step.
Python's defaults would kill the step outright on SIGTERM or SIGHUP, leaving tbot
running and its config (the token) on disk. Inside :func:`cancellable`, the
first of these signals raises :class:`Cancelled` instead, so every ``finally``
runs; code that must not be cut short (stopping tbot, resuming workflow
commands) runs under :func:`deferred` and polls :func:`requested`.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from teleport_auth.gha import ActionFailure

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

# typing.TYPE_CHECKING without importing typing at run time (mypy reads it the same).
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    _Handler = Callable[[int, FrameType | None], Any] | int | None


class Cancelled(ActionFailure):
    """The step got a cancelling signal; it exits with 128+N, as a shell reports it."""

    def __init__(self, signum: int, detail: str = "") -> None:
        name = signal.Signals(signum).name
        super().__init__(
            f"The step was cancelled ({name}){detail}.",
            exit_code=128 + signum,
            hint=f"The job was cancelled or timed out, or the step's process was sent {name}.",
        )
        self.signum = signum
        if _state is not None:
            # This signal is on its way out now: no section end raises it a second time.
            _state.raised = True


class _State:
    def __init__(self) -> None:
        self.signum: int | None = None  # the first signal received
        self.repeated = False  # another one came after it
        self.deferring = 0  # depth of deferred() sections
        self.raised = False  # a Cancelled for it has been raised already
        self.finished = False  # past the point of no return: signals are only recorded


_state: _State | None = None


def _handle(signum: int, frame: FrameType | None) -> None:
    del frame
    state = _state
    if state is None:
        return
    if state.signum is not None or state.finished:
        # Already cancelling (a later signal only hurries the clean-up along), or
        # the step has published its results and is only finishing.
        state.repeated = state.signum is not None
        return
    state.signum = signum
    if not state.deferring:
        raise Cancelled(signum)


@contextmanager
def cancellable() -> Iterator[None]:
    """Turn the first cancelling signal into :class:`Cancelled`; restore the handlers after.

    Signals the step was started with ignored (e.g. SIGHUP under ``nohup``) stay
    ignored. Outside the main thread (where Python cannot set handlers), and when
    already installed, this does nothing.
    """
    global _state
    if _state is not None or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous: dict[int, _Handler] = {}
    _state = _State()
    try:
        for wanted in SIGNALS:
            if signal.getsignal(wanted) is not signal.SIG_IGN:
                previous[wanted] = signal.signal(wanted, _handle)
        yield
    finally:
        for signum, handler in previous.items():
            # None: a handler not set from Python, which cannot be put back.
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        _state = None


@contextmanager
def deferred() -> Iterator[None]:
    """Record a cancelling signal instead of raising it at once.

    The code inside polls :func:`requested` and reacts itself; a signal it left
    unhandled is raised when the section ends (unless an exception is already
    on its way out).
    """
    state = _state
    if state is None:
        yield
        return
    state.deferring += 1
    try:
        yield
    finally:
        state.deferring -= 1
    if state.signum is not None and not state.deferring and not state.raised:
        raise Cancelled(state.signum)


@contextmanager
def final() -> Iterator[None]:
    """The point of no return: from here the step completes.

    A signal inside (or after) is recorded, not raised: what the step publishes
    inside stays true, and it is not undone half-way.
    """
    state = _state
    if state is not None:
        state.finished = True
    yield


def requested() -> int | None:
    """The cancelling signal received so far, if any."""
    return None if _state is None else _state.signum


def repeated() -> bool:
    """Whether another signal arrived after the first: stop waiting, finish now."""
    return _state is not None and _state.repeated
