"""The background submission: at most one event, bounded waits, silence, no leaks."""

from __future__ import annotations

import datetime
import itertools
import os
import socket
import threading
import time
from typing import Any

import pytest

from fault_server import FaultServer, clear_proxy_environment, held_refused_port
from teleport_auth import HELPER_NAME, __version__
from teleport_auth._proto.prehog.v1alpha import tbot_pb2
from teleport_auth.telemetry import HELPER_ENV, HELPER_VERSION_ENV, sender
from teleport_auth.telemetry.connect import CallResult, user_agent
from teleport_auth.telemetry.event import build_event
from teleport_auth.telemetry.sender import Outcome, Submission, describe_failure

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

UNAFFECTED = "Authentication is not affected."


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


def _request(**kwargs: Any) -> tbot_pb2.SubmitTbotEventRequest:
    config = {
        "version": "v2",
        "proxy_server": "tele.example.com:443",
        "oneshot": True,
        "onboarding": {"join_method": "github", "token": "t", "ca_pins": []},
        "storage": {"type": "memory"},
        "outputs": [{"type": "identity"}],
        "services": [],
    }
    env = {HELPER_ENV: HELPER_NAME, HELPER_VERSION_ENV: __version__}
    return build_event(
        tbot_version="16.4.2", config=kwargs.get("config", config), env=kwargs.get("env", env)
    )


def _submission(url: str, attempt_timeout: float = 5.0) -> Submission:
    return Submission(
        base_url=url, request=_request(), user_agent=user_agent(), attempt_timeout=attempt_timeout
    )


@pytest.mark.parametrize(
    ("mode", "status", "attempts", "code"),
    [
        pytest.param("ok", "sent", 1, "", id="ok"),
        pytest.param("flaky", "sent", 2, "", id="flaky-retried-once"),
        pytest.param("unavailable", "failed", 2, "unavailable", id="unavailable-twice"),
        # The request may have been processed before the reset: never repeated.
        pytest.param("reset", "failed", 1, "unavailable", id="reset-not-retried"),
        pytest.param("http500", "failed", 1, "unknown", id="http500-not-retried"),
        pytest.param("garbage", "failed", 1, "internal", id="garbage-not-retried"),
        pytest.param("redirect", "failed", 1, "unknown", id="redirect-not-retried"),
    ],
)
def test_outcomes(
    capfd: pytest.CaptureFixture[str], mode: str, status: str, attempts: int, code: str
) -> None:
    with FaultServer(mode) as server:
        submission = _submission(server.url)
        submission.start()
        outcome = submission.wait(5)
        received = server.requests

    assert outcome.status == status
    assert outcome.attempts == attempts
    assert len(received) == attempts
    assert outcome.result is not None
    assert outcome.result.code == code
    assert 0 <= outcome.duration < 5
    # Every attempt carries the same event.
    assert {r.body for r in received} == {_request_body(received[0].body)}
    # The thread reports through the Outcome only.
    assert capfd.readouterr() == ("", "")


def _request_body(body: bytes) -> bytes:
    tbot_pb2.SubmitTbotEventRequest.FromString(body)  # decodes
    return body


def test_not_connected_is_retried_once() -> None:
    with held_refused_port() as port:
        submission = _submission(f"http://127.0.0.1:{port}")
        submission.start()
        outcome = submission.wait(5)

    assert (outcome.status, outcome.attempts) == ("failed", 2)
    assert outcome.result is not None
    assert (outcome.result.code, outcome.result.sent) == ("unavailable", False)
    assert describe_failure(outcome) == (
        f"Anonymous telemetry was not sent (unavailable: connection refused). {UNAFFECTED}"
    )


def test_hanging_endpoint_leaves_the_wait_pending_on_time(
    capfd: pytest.CaptureFixture[str],
) -> None:
    with FaultServer("hang") as server:
        submission = _submission(server.url)
        submission.start()
        began = time.monotonic()
        outcome = submission.wait(0.3)
        waited = time.monotonic() - began

        assert outcome.status == "pending"
        assert waited < 1.5
        assert outcome.attempts == 1
        assert describe_failure(outcome) == (
            "Anonymous telemetry was not confirmed: the endpoint did not answer in time "
            f"(deadline_exceeded). {UNAFFECTED}"
        )
    # The server stopped and dropped the connection: that single attempt ends,
    # and is not repeated since the request had gone out.
    final = submission.wait(5)
    assert (final.status, final.attempts) == ("failed", 1)
    assert capfd.readouterr() == ("", "")


def test_cancel_prevents_the_retry() -> None:
    gate = threading.Event()
    with FaultServer("unavailable", gate=gate) as server:
        submission = _submission(server.url)
        submission.start()
        assert server.wait_for_requests(1)
        # tbot failed while the first attempt was in flight.
        submission.cancel()
        gate.set()
        outcome = submission.wait(5)
        received = server.requests

    assert len(received) == 1
    assert (outcome.status, outcome.attempts) == ("failed", 1)
    assert outcome.result is not None
    assert outcome.result.code == "unavailable"


def test_cancel_does_not_interrupt_the_attempt_in_flight() -> None:
    gate = threading.Event()
    with FaultServer("ok", gate=gate) as server:
        submission = _submission(server.url)
        submission.start()
        assert server.wait_for_requests(1)
        submission.cancel()
        gate.set()
        outcome = submission.wait(5)

    assert (outcome.status, outcome.attempts) == ("sent", 1)


def test_cancel_before_start_sends_nothing() -> None:
    with FaultServer("ok") as server:
        submission = _submission(server.url)
        submission.cancel()
        submission.start()
        outcome = submission.wait(5)
        received = server.requests

    assert received == []
    assert (outcome.status, outcome.attempts, outcome.result) == ("cancelled", 0, None)


def test_wait_without_start_does_not_block() -> None:
    submission = _submission("http://127.0.0.1:9")
    began = time.monotonic()
    assert submission.wait(5).status == "pending"
    assert time.monotonic() - began < 1
    submission.cancel()
    assert submission.wait(5).status == "cancelled"


def test_start_twice_is_one_submission() -> None:
    with FaultServer("ok") as server:
        submission = _submission(server.url)
        submission.start()
        submission.start()
        assert submission.wait(5).status == "sent"
        assert len(server.requests) == 1


def test_duration_uses_the_given_clock() -> None:
    ticks = itertools.count(100.0, 1.5)
    with FaultServer("ok") as server:
        submission = Submission(
            base_url=server.url,
            request=_request(),
            user_agent=user_agent(),
            clock=lambda: next(ticks),
        )
        submission.start()
        outcome = submission.wait(5)
    assert outcome.duration == 1.5


def test_worker_errors_become_a_failed_result(
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    escaped_thread_errors: list[str],
) -> None:
    def exploding_call(*args: Any, **kwargs: Any) -> CallResult:
        raise KeyError("boom")

    monkeypatch.setattr(sender, "call_unary", exploding_call)
    submission = _submission("http://127.0.0.1:9")
    submission.start()
    outcome = submission.wait(5)

    assert outcome.status == "failed"
    assert outcome.result is not None
    assert (outcome.result.code, outcome.result.message) == ("unknown", "internal error (KeyError)")
    assert outcome.result.retryable is False
    assert escaped_thread_errors == []
    assert capfd.readouterr() == ("", "")


def _result(code: str, message: str) -> CallResult:
    return CallResult(
        ok=False, code=code, message=message, http_status=None, sent=True, retryable=False
    )


@pytest.mark.parametrize(
    ("outcome", "line"),
    [
        pytest.param(
            Outcome("failed", _result("unavailable", "connection refused"), 2, 0.1),
            f"Anonymous telemetry was not sent (unavailable: connection refused). {UNAFFECTED}",
            id="failed",
        ),
        pytest.param(
            Outcome("failed", _result("internal", ""), 1, 0.1),
            f"Anonymous telemetry was not sent (internal). {UNAFFECTED}",
            id="failed-no-message",
        ),
        pytest.param(
            Outcome("pending", None, 1, 1.0),
            "Anonymous telemetry was not confirmed: the endpoint did not answer in time "
            f"(deadline_exceeded). {UNAFFECTED}",
            id="pending",
        ),
        pytest.param(
            Outcome("cancelled", None, 0, 0.0),
            "Anonymous telemetry was not sent: the submission was cancelled before it started.",
            id="cancelled",
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
    env = {**os.environ, HELPER_ENV: HELPER_NAME, HELPER_VERSION_ENV: __version__}
    config = {
        "version": "v2",
        "proxy_server": "canary-proxy.example:443",
        "oneshot": True,
        "certificate_ttl": "CANARY-TTL",
        "onboarding": {
            "join_method": "github",
            "token": "CANARY-TOKEN-123",
            "ca_pins": ["sha256:CANARYPIN"],
        },
        "storage": {"type": "memory"},
        "outputs": [
            {
                "type": "identity",
                "destination": {"type": "directory", "path": "/tmp/CANARY-DIR"},
                "roles": ["CANARY-ROLE"],
            }
        ],
        "services": [],
    }
    request = build_event(
        tbot_version="16.4.2",
        config=config,
        env=env,
        distinct_id="4f1c2a3b-0d9e-4c8b-9a7f-6e5d4c3b2a10",
        now=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
    )

    with FaultServer("ok") as server:
        submission = Submission(base_url=server.url, request=request, user_agent=user_agent())
        submission.start()
        assert submission.wait(5).status == "sent"
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
    # What does go out is only the schema's content.
    assert tbot_pb2.SubmitTbotEventRequest.FromString(received.body) == request
