"""Submits the event in the background while tbot runs, and never holds the step up.

The caller starts a Submission with the event's printed JSON just before tbot
starts; everything costly happens in the worker thread, alongside tbot:
importing protobuf, requests and truststore, encoding the printed text
(wire.py) and the HTTP call (connect.py). This module imports none of them,
so starting the submission costs the step next to nothing.

The worker makes at most two attempts, the second only when the first
certainly did not deliver the event, so a run submits its event at most once.
``stop_retrying`` (tbot failed) lets the first attempt go out, as tbot's own
event leaves as tbot starts, but rules out a retry; ``cancel`` (the step is
moving on) rules out any attempt not yet begun. The thread prints nothing and
raises nothing: the main thread reports the Outcome.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from teleport_auth.record import Record
from teleport_auth.telemetry.result import CallResult

MAX_ATTEMPTS = 2
# A short pause before the single retry, cut short by cancel() or stop_retrying().
RETRY_DELAY_SECONDS = 0.2

# confirmed: the endpoint acknowledged the event.
# refused: the endpoint answered that the call failed: it did not take the event.
# unconfirmed: the request may have reached the endpoint, with no acknowledgement
#   (reset after sending, a 200 that is not a valid response, no answer in time).
# not_sent: the event certainly never left this machine.
# typing.TYPE_CHECKING without importing typing at run time (mypy reads it the same).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal

    Delivery = Literal["confirmed", "refused", "unconfirmed", "not_sent"]


class Outcome(Record):
    # A slotted class, not a dataclass: see CallResult.
    __slots__ = ("attempts", "delivery", "duration", "finished", "in_flight", "result")

    def __init__(
        self,
        *,
        delivery: Delivery,
        result: CallResult | None,
        attempts: int,
        duration: float,
        in_flight: bool,
        finished: bool,
    ) -> None:
        self.delivery: Delivery = delivery
        # The last attempt that ended (None while none has).
        self.result = result
        self.attempts = attempts
        self.duration = duration
        # An attempt had begun and was still waiting for its answer.
        self.in_flight = in_flight
        # The worker thread has ended: this outcome is final.
        self.finished = finished


def _delivery(result: CallResult | None, attempts: int, in_flight: bool) -> Delivery:
    if in_flight:
        return "unconfirmed"
    if attempts == 0 or result is None or not result.sent:
        return "not_sent"
    if result.ok:
        return "confirmed"
    return "refused" if result.refused else "unconfirmed"


class Submission:
    def __init__(
        self,
        *,
        base_url: str,
        event_json: str,
        user_agent: str | None = None,
        attempt_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base_url = base_url
        self._event_json = event_json
        self._user_agent = user_agent
        self._attempt_timeout = attempt_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._cancelled = False
        # Set by cancel() and stop_retrying(): wakes the pause before a retry.
        self._no_retry = threading.Event()
        self._done = threading.Event()
        self._started_at: float | None = None
        self._finished_at: float | None = None
        self._attempts = 0
        self._in_flight = False
        self._result: CallResult | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Launch the worker thread; a second call does nothing."""
        with self._lock:
            if self._started_at is not None:
                return
            self._started_at = self._clock()
            # Daemon: a hanging endpoint must not keep the step's process alive.
            self._thread = threading.Thread(
                target=self._run, name="telemetry-submission", daemon=True
            )
        self._thread.start()

    def stop_retrying(self) -> None:
        """No retry starts after this; the first attempt still may."""
        self._no_retry.set()

    def cancel(self) -> None:
        """No attempt starts after this; one already in flight runs to its end."""
        with self._lock:
            self._cancelled = True
        self._no_retry.set()

    def wait(self, timeout: float) -> Outcome:
        """The outcome so far, after at most ``timeout`` seconds."""
        with self._lock:
            started = self._started_at is not None
        if started:
            self._done.wait(max(0.0, timeout))
        with self._lock:
            finished = self._done.is_set()
            if self._started_at is None:
                duration = 0.0
            else:
                end = self._finished_at if finished and self._finished_at is not None else None
                duration = (end if end is not None else self._clock()) - self._started_at
            return Outcome(
                delivery=_delivery(self._result, self._attempts, self._in_flight),
                result=self._result,
                attempts=self._attempts,
                duration=duration,
                in_flight=self._in_flight,
                finished=finished,
            )

    def _run(self) -> None:
        try:
            self._attempt_all()
        except BaseException as exc:  # the thread must never raise, nor print a traceback
            with self._lock:
                self._in_flight = False
                self._result = CallResult(
                    ok=False,
                    code="unknown",
                    message=f"internal error ({type(exc).__name__})",
                    http_status=None,
                    sent=self._attempts > 0,
                    retryable=False,
                )
        finally:
            with self._lock:
                self._finished_at = self._clock()
            self._done.set()

    def _may_begin(self, attempt: int) -> bool:
        """Count the attempt if it may begin: checked and counted in one step."""
        with self._lock:
            if self._cancelled or (attempt > 0 and self._no_retry.is_set()):
                return False
            self._attempts += 1
            self._in_flight = True
            return True

    def _attempt_all(self) -> None:
        # The costly imports, here in the worker rather than in the step's path.
        from teleport_auth.telemetry import connect, tls, wire  # noqa: PLC0415

        body = wire.encode(self._event_json)
        user_agent = self._user_agent or connect.user_agent()
        with tls.system_trust_session() as session:
            for attempt in range(MAX_ATTEMPTS):
                if attempt > 0 and self._no_retry.wait(RETRY_DELAY_SECONDS):
                    return
                if not self._may_begin(attempt):
                    return
                result = connect.call_unary(
                    session,
                    self._base_url,
                    body,
                    timeout=self._attempt_timeout,
                    user_agent=user_agent,
                )
                with self._lock:
                    self._result = result
                    self._in_flight = False
                if not result.retryable:
                    return


_UNAFFECTED = "Authentication is not affected."


def _detail(result: CallResult) -> str:
    return f"{result.code}: {result.message}" if result.message else result.code


def describe_failure(outcome: Outcome) -> str:
    """One line for the ::warning:: when the endpoint did not confirm the event."""
    result = outcome.result
    if outcome.delivery == "confirmed":
        return "Anonymous telemetry was sent."
    if outcome.in_flight or result is None:
        if outcome.attempts == 0:
            return (
                "Anonymous telemetry was not sent: it was not ready before the step "
                f"moved on. {_UNAFFECTED}"
            )
        return (
            "Anonymous telemetry was not confirmed in time (deadline_exceeded): "
            f"the event may have arrived. {_UNAFFECTED}"
        )
    if outcome.delivery == "not_sent":
        return f"Anonymous telemetry was not sent ({_detail(result)}). {_UNAFFECTED}"
    if outcome.delivery == "refused":
        return (
            f"Anonymous telemetry was not accepted by the endpoint ({_detail(result)}). "
            f"{_UNAFFECTED}"
        )
    return (
        f"Anonymous telemetry was not confirmed ({_detail(result)}): the event may have arrived. "
        f"{_UNAFFECTED}"
    )
