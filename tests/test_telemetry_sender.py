"""The background submission: at most one event, bounded waits, silence, no leaks."""

from __future__ import annotations

import datetime
import itertools
import socket
import threading
import time
from typing import Any

import pytest

from fault_server import FaultServer, clear_proxy_environment, held_refused_port
from teleport_auth import HELPER_NAME, HELPER_VERSION
from teleport_auth._proto.prehog.v1alpha import tbot_pb2
from teleport_auth.telemetry import connect, sender, wire
from teleport_auth.telemetry.event import build_event, event_json
from teleport_auth.telemetry.result import CallResult
from teleport_auth.telemetry.sender import Outcome, Submission, _delivery, describe_failure

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

UNAFFECTED = "Authentication is not affected."
CONFIG: Any = {
    "version": "v2",
    "proxy_server": "tele.example.com:443",
    "oneshot": True,
    "onboarding": {"join_method": "github", "token": "t", "ca_pins": []},
    "storage": {"type": "memory"},
    "outputs": [{"type": "identity"}],
    "services": [],
}
PRINTED = event_json(
    build_event(
        tbot_version="16.4.2",
        config=CONFIG,
        helper=HELPER_NAME,
        helper_version=HELPER_VERSION,
    )
)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_proxy_environment(monkeypatch)


@pytest.fixture(autouse=True)
def escaped_thread_errors(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail loudly if the worker thread lets an exception escape."""
    escaped: list[str] = []

    def hook(args: threading.ExceptHookArgs) -> None:
        escaped.append(repr(args.exc_value))

    monkeypatch.setattr(threading, "excepthook", hook)
    return escaped


def _submission(url: str, attempt_timeout: float = 5.0, printed: str = PRINTED) -> Submission:
    return Submission(base_url=url, event_json=printed, attempt_timeout=attempt_timeout)


@pytest.mark.parametrize(
    ("mode", "delivery", "attempts", "code"),
    [
        pytest.param("ok", "confirmed", 1, "", id="ok"),
        pytest.param("flaky", "confirmed", 2, "", id="flaky-retried-once"),
        pytest.param("unavailable", "refused", 2, "unavailable", id="unavailable-twice"),
        # The request may have been processed before the reset: never repeated,
        # and never reported as "not sent".
        pytest.param("reset", "unconfirmed", 1, "unavailable", id="reset-not-retried"),
        pytest.param("http500", "refused", 1, "unknown", id="http500-not-retried"),
        pytest.param("garbage", "unconfirmed", 1, "internal", id="garbage-200-unconfirmed"),
        pytest.param("wrong_type", "unconfirmed", 1, "internal", id="html-200-unconfirmed"),
        pytest.param("redirect", "refused", 1, "unknown", id="redirect-not-followed"),
    ],
)
def test_outcomes(
    capfd: pytest.CaptureFixture[str], mode: str, delivery: str, attempts: int, code: str
) -> None:
    with FaultServer(mode) as server:
        submission = _submission(server.url)
        submission.start()
        outcome = submission.wait(5)
        received = server.requests

    assert outcome.finished
    assert not outcome.in_flight
    assert outcome.delivery == delivery
    assert outcome.attempts == attempts
    assert len(received) == attempts
    assert outcome.result is not None
    assert outcome.result.code == code
    assert 0 <= outcome.duration < 5
    # Every attempt carries the event exactly as it was printed.
    assert {r.body for r in received} == {wire.encode(PRINTED)}
    # The thread reports through the Outcome only.
    assert capfd.readouterr() == ("", "")


def test_not_connected_is_retried_once() -> None:
    with held_refused_port() as port:
        submission = _submission(f"http://127.0.0.1:{port}")
        submission.start()
        outcome = submission.wait(5)

    assert (outcome.delivery, outcome.attempts) == ("not_sent", 2)
    assert outcome.result is not None
    assert (outcome.result.code, outcome.result.sent) == ("unavailable", False)
    assert describe_failure(outcome) == (
        f"Anonymous telemetry was not sent (unavailable: connection refused). {UNAFFECTED}"
    )


def test_hanging_endpoint_leaves_the_wait_unconfirmed_on_time(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with FaultServer("hang") as server:
        submission = _submission(server.url)
        submission.start()
        assert server.wait_for_requests(1)
        began = time.monotonic()
        outcome = submission.wait(0.3)
        waited = time.monotonic() - began

        assert (outcome.finished, outcome.in_flight) == (False, True)
        assert outcome.delivery == "unconfirmed"
        assert waited < 1.5
        assert outcome.attempts == 1
        assert describe_failure(outcome) == (
            "Anonymous telemetry was not confirmed in time (deadline_exceeded): "
            f"the event may have arrived. {UNAFFECTED}"
        )
    # The server stopped and dropped the connection: that single attempt ends,
    # and is not repeated since the request had gone out.
    final = submission.wait(5)
    assert (final.finished, final.delivery, final.attempts) == (True, "unconfirmed", 1)
    assert capfd.readouterr() == ("", "")


def test_cancel_prevents_the_retry() -> None:
    gate = threading.Event()
    with FaultServer("unavailable", gate=gate) as server:
        submission = _submission(server.url)
        submission.start()
        assert server.wait_for_requests(1)
        # The step moved on while the first attempt was in flight.
        submission.cancel()
        gate.set()
        outcome = submission.wait(5)
        received = server.requests

    assert len(received) == 1
    assert (outcome.delivery, outcome.attempts) == ("refused", 1)
    assert outcome.result is not None
    assert outcome.result.code == "unavailable"


def test_stop_retrying_prevents_the_retry() -> None:
    gate = threading.Event()
    with FaultServer("unavailable", gate=gate) as server:
        submission = _submission(server.url)
        submission.start()
        assert server.wait_for_requests(1)
        # tbot failed while the first attempt was in flight.
        submission.stop_retrying()
        gate.set()
        outcome = submission.wait(5)
        assert len(server.requests) == 1
    assert (outcome.delivery, outcome.attempts) == ("refused", 1)


def test_stop_retrying_still_lets_the_first_attempt_go() -> None:
    # tbot failed before the worker got to its first attempt: the event still
    # goes out once, as tbot's own does when its join fails.
    with FaultServer("ok") as server:
        submission = _submission(server.url)
        submission.stop_retrying()
        submission.start()
        outcome = submission.wait(5)
        assert len(server.requests) == 1
    assert (outcome.delivery, outcome.attempts) == ("confirmed", 1)


def test_cancel_does_not_interrupt_the_attempt_in_flight() -> None:
    gate = threading.Event()
    with FaultServer("ok", gate=gate) as server:
        submission = _submission(server.url)
        submission.start()
        assert server.wait_for_requests(1)
        submission.cancel()
        gate.set()
        outcome = submission.wait(5)

    assert (outcome.delivery, outcome.attempts) == ("confirmed", 1)


def test_cancel_before_the_first_attempt_sends_nothing() -> None:
    with FaultServer("ok") as server:
        submission = _submission(server.url)
        submission.cancel()
        submission.start()
        outcome = submission.wait(5)
        received = server.requests

    assert received == []
    assert (outcome.delivery, outcome.attempts, outcome.result) == ("not_sent", 0, None)
    assert outcome.finished


def test_after_cancel_no_attempt_can_begin(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the step reads after cancel() is final: a worker still encoding sends nothing."""
    encoding = threading.Event()
    release = threading.Event()
    real_encode = wire.encode

    def slow_encode(printed: str) -> bytes:
        encoding.set()
        release.wait(5)
        return real_encode(printed)

    monkeypatch.setattr(wire, "encode", slow_encode)
    with FaultServer("ok") as server:
        submission = _submission(server.url)
        submission.start()
        assert encoding.wait(5)
        submission.cancel()
        outcome = submission.wait(0)
        release.set()
        final = submission.wait(5)
        received = server.requests

    assert (outcome.delivery, outcome.attempts, outcome.in_flight) == ("not_sent", 0, False)
    assert describe_failure(outcome) == (
        f"Anonymous telemetry was not sent: it was not ready before the step moved on. {UNAFFECTED}"
    )
    assert (final.finished, final.delivery, final.attempts) == (True, "not_sent", 0)
    assert received == []


def test_wait_without_start_does_not_block() -> None:
    submission = _submission("http://127.0.0.1:9")
    began = time.monotonic()
    outcome = submission.wait(5)
    assert time.monotonic() - began < 1
    assert (outcome.delivery, outcome.attempts, outcome.finished) == ("not_sent", 0, False)


def test_start_twice_is_one_submission() -> None:
    with FaultServer("ok") as server:
        submission = _submission(server.url)
        submission.start()
        submission.start()
        assert submission.wait(5).delivery == "confirmed"
        assert len(server.requests) == 1


def test_duration_uses_the_given_clock() -> None:
    ticks = itertools.count(100.0, 1.5)
    with FaultServer("ok") as server:
        submission = Submission(base_url=server.url, event_json=PRINTED, clock=lambda: next(ticks))
        submission.start()
        outcome = submission.wait(5)
    assert outcome.duration == 1.5
    # Final once finished: asked again later, the duration stays what it was.
    assert submission.wait(0).duration == 1.5


def test_worker_errors_become_a_result(
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    escaped_thread_errors: list[str],
) -> None:
    def exploding_call(*args: Any, **kwargs: Any) -> CallResult:
        raise KeyError("boom")

    monkeypatch.setattr(connect, "call_unary", exploding_call)
    submission = _submission("http://127.0.0.1:9")
    submission.start()
    outcome = submission.wait(5)

    assert outcome.result is not None
    assert (outcome.result.code, outcome.result.message) == ("unknown", "internal error (KeyError)")
    assert outcome.result.retryable is False
    # The attempt had begun: whether anything left is unknown, so it is not "not sent".
    assert (outcome.delivery, outcome.attempts) == ("unconfirmed", 1)
    assert escaped_thread_errors == []
    assert capfd.readouterr() == ("", "")


def test_an_event_that_does_not_encode_is_not_sent(
    capfd: pytest.CaptureFixture[str], escaped_thread_errors: list[str]
) -> None:
    with FaultServer("ok") as server:
        submission = _submission(server.url, printed='{"distinct_id": "x", "hostname": "h"}')
        submission.start()
        outcome = submission.wait(5)
        assert server.requests == []

    assert (outcome.delivery, outcome.attempts) == ("not_sent", 0)
    assert outcome.result is not None
    assert outcome.result.message == "internal error (ParseError)"
    assert outcome.result.sent is False
    assert describe_failure(outcome) == (
        f"Anonymous telemetry was not sent (unknown: internal error (ParseError)). {UNAFFECTED}"
    )
    assert escaped_thread_errors == []
    assert capfd.readouterr() == ("", "")


def _result(code: str, message: str, *, sent: bool = True, refused: bool = False) -> CallResult:
    return CallResult(
        ok=False,
        code=code,
        message=message,
        http_status=None,
        sent=sent,
        retryable=False,
        refused=refused,
    )


def _outcome(result: CallResult | None, attempts: int = 1, *, in_flight: bool = False) -> Outcome:
    return Outcome(
        delivery=_delivery(result, attempts, in_flight),
        result=result,
        attempts=attempts,
        duration=0.1,
        in_flight=in_flight,
        finished=not in_flight,
    )


@pytest.mark.parametrize(
    ("outcome", "line"),
    [
        pytest.param(
            _outcome(_result("unavailable", "connection refused", sent=False), 2),
            f"Anonymous telemetry was not sent (unavailable: connection refused). {UNAFFECTED}",
            id="not-sent",
        ),
        pytest.param(
            _outcome(_result("unavailable", "connection reset by the server")),
            "Anonymous telemetry was not confirmed (unavailable: connection reset by the "
            f"server): the event may have arrived. {UNAFFECTED}",
            id="reset-after-sending",
        ),
        pytest.param(
            _outcome(_result("internal", "response larger than 65536 bytes")),
            "Anonymous telemetry was not confirmed (internal: response larger than 65536 "
            f"bytes): the event may have arrived. {UNAFFECTED}",
            id="oversized-200",
        ),
        pytest.param(
            _outcome(_result("internal", "")),
            "Anonymous telemetry was not confirmed (internal): the event may have arrived. "
            f"{UNAFFECTED}",
            id="no-message",
        ),
        pytest.param(
            _outcome(_result("unknown", "HTTP 500 Internal Server Error", refused=True)),
            "Anonymous telemetry was not accepted by the endpoint "
            f"(unknown: HTTP 500 Internal Server Error). {UNAFFECTED}",
            id="refused",
        ),
        pytest.param(
            _outcome(None, in_flight=True),
            "Anonymous telemetry was not confirmed in time (deadline_exceeded): "
            f"the event may have arrived. {UNAFFECTED}",
            id="in-flight",
        ),
        pytest.param(
            _outcome(None, 0),
            "Anonymous telemetry was not sent: it was not ready before the step moved on. "
            f"{UNAFFECTED}",
            id="never-began",
        ),
    ],
)
def test_describe_failure(outcome: Outcome, line: str) -> None:
    assert describe_failure(outcome) == line
    assert "\n" not in line


def test_nothing_identifying_reaches_the_wire(monkeypatch: pytest.MonkeyPatch) -> None:
    """Canaries in every place a careless implementation might read from."""
    canaries = {
        "GITHUB_REPOSITORY": "canary-org/CANARY-REPO",
        "GITHUB_ACTOR": "CANARY-ACTOR",
        "GITHUB_WORKFLOW": "CANARY-WORKFLOW",
        "GITHUB_RUN_ID": "987654321012",
        "RUNNER_NAME": "CANARY-RUNNER",
        "INPUT_TOKEN": "CANARY-INPUT-TOKEN",
        "INPUT_PROXY": "canary-input-proxy.example:443",
    }
    for name, value in canaries.items():
        monkeypatch.setenv(name, value)
    config: Any = {
        **CONFIG,
        "proxy_server": "canary-proxy.example:443",
        "certificate_ttl": "CANARY-TTL",
        "onboarding": {
            "join_method": "github",
            "token": "CANARY-TOKEN-123",
            "ca_pins": ["sha256:CANARYPIN"],
        },
        "outputs": [
            {
                "type": "identity",
                "destination": {"type": "directory", "path": "/tmp/CANARY-DIR"},
                "roles": ["CANARY-ROLE"],
            }
        ],
    }
    printed = event_json(
        build_event(
            tbot_version="16.4.2",
            config=config,
            helper=HELPER_NAME,
            helper_version=HELPER_VERSION,
            distinct_id="4f1c2a3b-0d9e-4c8b-9a7f-6e5d4c3b2a10",
            now=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
        )
    )

    with FaultServer("ok") as server:
        submission = _submission(server.url, printed=printed)
        submission.start()
        assert submission.wait(5).delivery == "confirmed"
        (received,) = server.requests

    secrets = [
        *canaries.values(),
        "CANARY",
        "canary",
        "CANARY-TOKEN-123",
        "canary-proxy.example",
        socket.gethostname(),
    ]
    header_values = " ".join(f"{k}: {v}" for k, v in received.header_lines)
    for secret in secrets:
        assert secret.encode() not in received.body, secret
        assert secret not in header_values, secret
    # What does go out is only the schema's content: the printed event.
    assert tbot_pb2.SubmitTbotEventRequest.FromString(received.body) == wire.to_message(printed)


def test_the_worker_is_a_named_daemon_thread() -> None:
    # Daemon: a hanging endpoint cannot keep the step's process alive.
    gate = threading.Event()
    with FaultServer("ok", gate=gate) as server:
        submission = _submission(server.url)
        submission.start()
        [worker] = [t for t in threading.enumerate() if t.name == "telemetry-submission"]
        assert worker.daemon
        gate.set()
        assert submission.wait(5).delivery == "confirmed"


class NeverDone:
    """Stands in for the submission's "done" event: records each wait, never set."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    def wait(self, timeout: float) -> bool:
        self.asked.append(timeout)
        return False

    def is_set(self) -> bool:
        return False


def test_waiting_never_waits_longer_than_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    submission = _submission("http://127.0.0.1:9")
    done = NeverDone()
    monkeypatch.setattr(submission, "_done", done)
    assert submission.wait(0).duration == 0.0  # not started: nothing waited for
    monkeypatch.setattr(submission, "_started_at", 1.0)
    submission.wait(0)
    submission.wait(-3)
    assert done.asked == [0.0, 0.0]


def test_the_retry_comes_after_the_pause() -> None:
    with FaultServer("flaky") as server:
        submission = _submission(server.url)
        submission.start()
        outcome = submission.wait(10)
    assert (outcome.delivery, outcome.attempts) == ("confirmed", 2)
    assert outcome.duration >= sender.RETRY_DELAY_SECONDS


def test_a_confirmed_outcome_reads_as_sent() -> None:
    confirmed = _outcome(
        CallResult(ok=True, code="", message="", http_status=200, sent=True, retryable=False)
    )
    assert describe_failure(confirmed) == "Anonymous telemetry was sent."
