"""Cancellation in-process: what a signal does before, during and after the point of no return.

The signals are real (``signal.raise_signal``), delivered to this process's main
thread. Around every test the three cancelling signals go to a recorder, so a
handler :mod:`teleport_auth.cancel` failed to install (or to restore) shows as a
recorded signal rather than as the end of the test run.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from conftest import Job
from step_helpers import errors, run_step
from teleport_auth import cancel
from teleport_auth.cancel import Cancelled, cancellable, deferred, final, repeated, requested
from teleport_auth.runner_files import RunnerFiles

pytestmark = pytest.mark.step


@pytest.fixture(autouse=True)
def outer() -> Iterator[list[int]]:
    """The handlers in place before the step: they record what reaches them."""
    received: list[int] = []

    def record(signum: int, frame: FrameType | None) -> None:
        del frame
        received.append(signum)

    before = {signum: signal.signal(signum, record) for signum in cancel.SIGNALS}
    try:
        yield received
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


@pytest.mark.parametrize("signum", cancel.SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_the_first_signal_raises_cancelled_with_the_shells_exit_code(
    signum: int, outer: list[int]
) -> None:
    with pytest.raises(Cancelled) as caught, cancellable():
        signal.raise_signal(signum)
    name = signal.Signals(signum).name
    assert caught.value.signum == signum
    assert caught.value.exit_code == 128 + signum
    assert caught.value.message == f"The step was cancelled ({name})."
    assert name in caught.value.hint
    assert outer == []


def test_the_handlers_in_place_before_are_restored(outer: list[int]) -> None:
    with cancellable():
        pass
    signal.raise_signal(signal.SIGTERM)
    assert outer == [signal.SIGTERM]
    assert requested() is None


def test_a_signal_the_step_started_ignoring_stays_ignored(outer: list[int]) -> None:
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with cancellable():
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        signal.raise_signal(signal.SIGHUP)
        assert requested() is None
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    assert outer == []


def test_a_handler_not_set_from_python_is_put_back_as_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # signal.signal answers None for a handler installed by C code: it cannot be put back.
    real = signal.signal

    def from_c(signum: int, handler: cancel._Handler) -> cancel._Handler:
        previous = real(signum, handler)
        return None if signum == signal.SIGTERM else previous

    monkeypatch.setattr(signal, "signal", from_c)
    with cancellable():
        pass
    monkeypatch.undo()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is not signal.SIG_DFL


def test_nested_and_outside_the_main_thread_it_does_nothing() -> None:
    with cancellable():
        handler = signal.getsignal(signal.SIGTERM)
        with cancellable():
            assert signal.getsignal(signal.SIGTERM) is handler
        # The inner one left the outer one's handler (and state) in place.
        assert signal.getsignal(signal.SIGTERM) is handler
        with pytest.raises(Cancelled):
            signal.raise_signal(signal.SIGTERM)

    seen: list[object] = []

    def elsewhere() -> None:
        with cancellable():
            seen.append(signal.getsignal(signal.SIGTERM))
            seen.append(requested())

    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join(10)
    assert seen == [before, None]


def test_deferred_records_the_signal_and_raises_it_when_the_section_ends(
    outer: list[int],
) -> None:
    seen: list[object] = []

    def section() -> None:
        with cancellable(), deferred():
            seen.append(requested())
            signal.raise_signal(signal.SIGINT)
            seen.extend([requested(), repeated()])
            signal.raise_signal(signal.SIGTERM)
            seen.extend([requested(), repeated()])  # the first one counts

    with pytest.raises(Cancelled) as caught:
        section()
    assert seen == [None, signal.SIGINT, False, signal.SIGINT, True]
    assert caught.value.signum == signal.SIGINT
    assert outer == []


def test_nested_deferred_sections_raise_only_when_the_outermost_ends() -> None:
    steps: list[str] = []

    def sections() -> None:
        with cancellable(), deferred():
            with deferred():
                signal.raise_signal(signal.SIGTERM)
            steps.append("after the inner section")

    with pytest.raises(Cancelled):
        sections()
    assert steps == ["after the inner section"]


def test_a_cancellation_already_raised_is_not_raised_again() -> None:
    # The code inside reacted itself (raised Cancelled): the section's end adds nothing.
    def section() -> None:
        with cancellable(), deferred():
            signal.raise_signal(signal.SIGHUP)
            raise Cancelled(signal.SIGHUP, " while tbot was running")

    with pytest.raises(Cancelled) as caught:
        section()
    assert caught.value.message == "The step was cancelled (SIGHUP) while tbot was running."


def test_an_exception_on_its_way_out_of_deferred_wins() -> None:
    def section() -> None:
        with cancellable(), deferred():
            signal.raise_signal(signal.SIGTERM)
            raise ValueError("already failing")

    with pytest.raises(ValueError, match="already failing"):
        section()


def test_the_clean_up_after_a_cancellation_is_not_cancelled_again() -> None:
    # The step catches Cancelled to clean up under deferred(); the signal it
    # came from has been raised once already, and that section must run through.
    cleaned = False
    with cancellable():
        try:
            signal.raise_signal(signal.SIGTERM)
        except Cancelled:
            with deferred():
                cleaned = True
    assert cleaned


def test_after_deferred_a_signal_raises_at_once_again() -> None:
    with cancellable():
        with deferred():
            pass
        with pytest.raises(Cancelled):
            signal.raise_signal(signal.SIGTERM)


def test_without_cancellable_the_helpers_do_nothing(outer: list[int]) -> None:
    with deferred(), final():
        assert requested() is None
        assert not repeated()
    signal.raise_signal(signal.SIGTERM)
    assert outer == [signal.SIGTERM]


def test_past_the_point_of_no_return_a_signal_is_not_raised(outer: list[int]) -> None:
    finished = False
    with cancellable():
        with final():
            signal.raise_signal(signal.SIGTERM)
            finished = True
        # ...nor after it: the step completes.
        signal.raise_signal(signal.SIGINT)
        assert requested() is None
    assert finished
    assert outer == []


def test_a_signal_while_the_step_publishes_leaves_it_complete(
    job: Job, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The runner cancels the job just as the outputs are being written: the
    # step has passed its point of no return, so it completes, all of it.
    publish = RunnerFiles.publish

    def cancelled_while_publishing(
        self: RunnerFiles, outputs: dict[str, str], exports: dict[str, str]
    ) -> None:
        signal.raise_signal(signal.SIGTERM)
        publish(self, outputs, exports)

    monkeypatch.setattr(RunnerFiles, "publish", cancelled_while_publishing)
    code, log = run_step(capsys)
    assert code == 0, log
    assert not errors(log)
    destination = Path(job.outputs["destination-dir"])
    assert set(job.outputs) == {"identity-file", "ssh-config", "destination-dir"}
    assert job.exported["TELEPORT_IDENTITY_FILE"] == str(destination / "identity")
    assert (destination / "identity").exists()
