"""Submits the event in the background while tbot runs, and never holds the step up.

The caller starts a Submission next to tbot, cancels it if tbot fails, and
waits a bounded time for it. The worker thread makes at most two attempts,
the second only when the first certainly did not deliver the event, so a
run submits its event at most once. The thread prints nothing and raises
nothing: the main thread reports the Outcome.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import requests

from teleport_auth._proto.prehog.v1alpha import tbot_pb2
from teleport_auth.telemetry.connect import CallResult, call_unary

MAX_ATTEMPTS = 2
# A short pause before the single retry, cut short by cancel().
RETRY_DELAY_SECONDS = 0.2

Status = Literal["sent", "failed", "pending", "cancelled"]


@dataclass(frozen=True)
class Outcome:
    # sent: the endpoint confirmed; failed: it did not (see result);
    # pending: still in flight when the wait ended; cancelled: no attempt was made.
    status: Status
    result: CallResult | None
    attempts: int
    duration: float


class Submission:
    def __init__(
        self,
        *,
        base_url: str,
        request: tbot_pb2.SubmitTbotEventRequest,
        user_agent: str,
        attempt_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._base_url = base_url
        self._request = request
        self._user_agent = user_agent
        self._attempt_timeout = attempt_timeout
        self._clock = clock
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self._done = threading.Event()
        self._started_at: float | None = None
        self._finished_at: float | None = None
        self._attempts = 0
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

    def cancel(self) -> None:
        """No attempt starts after this; one already in flight runs to its end."""
        self._cancelled.set()

    def wait(self, timeout: float) -> Outcome:
        """The outcome so far, after at most ``timeout`` seconds."""
        with self._lock:
            started = self._started_at is not None
        if started:
            self._done.wait(max(0.0, timeout))
        with self._lock:
            if self._started_at is None:
                status: Status = "cancelled" if self._cancelled.is_set() else "pending"
                return Outcome(status, None, 0, 0.0)
            if not self._done.is_set():
                return Outcome(
                    "pending", self._result, self._attempts, self._clock() - self._started_at
                )
            end = self._finished_at if self._finished_at is not None else self._clock()
            duration = end - self._started_at
            if self._result is None:
                return Outcome("cancelled", None, self._attempts, duration)
            status = "sent" if self._result.ok else "failed"
            return Outcome(status, self._result, self._attempts, duration)

    def _run(self) -> None:
        try:
            self._attempt_all()
        except BaseException as exc:  # the thread must never raise, nor print a traceback
            with self._lock:
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

    def _attempt_all(self) -> None:
        body = self._request.SerializeToString()
        with requests.Session() as session:
            for attempt in range(MAX_ATTEMPTS):
                if attempt > 0 and self._cancelled.wait(RETRY_DELAY_SECONDS):
                    return
                if self._cancelled.is_set():
                    return
                with self._lock:
                    self._attempts += 1
                result = call_unary(
                    session,
                    self._base_url,
                    body,
                    timeout=self._attempt_timeout,
                    user_agent=self._user_agent,
                )
                with self._lock:
                    self._result = result
                if not result.retryable:
                    return


def describe_failure(outcome: Outcome) -> str:
    """One line for the ::warning:: when the event did not go out."""
    unaffected = "Authentication is not affected."
    if outcome.status == "sent":
        return "Anonymous telemetry was sent."
    if outcome.status == "pending":
        return (
            "Anonymous telemetry was not confirmed: the endpoint did not answer in time "
            f"(deadline_exceeded). {unaffected}"
        )
    if outcome.status == "cancelled" or outcome.result is None:
        return "Anonymous telemetry was not sent: the submission was cancelled before it started."
    result = outcome.result
    detail = f"{result.code}: {result.message}" if result.message else result.code
    return f"Anonymous telemetry was not sent ({detail}). {unaffected}"
