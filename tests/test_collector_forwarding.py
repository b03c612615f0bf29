"""Forwarding to PostHog: in batches (the SDK's), after the event is stored, flushed on stop."""

from __future__ import annotations

import math
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from collector_helpers import EVENT_TIME, JSON, Running, as_json, jsonl, make_request, post
from collector_helpers import run_collector as _run_collector
from posthog_stub import PostHogStub
from tbot_collector import Collector, CollectorError, forwarding
from tbot_collector.forwarding import event_uuid


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK posts with requests, which honours proxy variables.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def forwarding_to(tmp_path: Path, url: str, **kwargs: Any) -> Any:
    return _run_collector(
        tmp_path, posthog_host=url, posthog_api_key="phc_test_key", quiet=True, **kwargs
    )


def send(running: Running, *ids: str) -> None:
    for distinct_id in ids:
        assert post(running.port, make_request(distinct_id).SerializeToString()).status == 200


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def refused_url() -> Iterator[str]:
    # A bound socket that never listens: connections are refused, and no one else takes the port.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{closed.getsockname()[1]}"


def test_forwards_to_posthog(tmp_path: Path) -> None:
    reqs = [make_request("p-1", destinations_database=2), make_request("p-2", helper="")]
    with PostHogStub() as stub, forwarding_to(tmp_path, stub.url) as running:
        assert post(running.port, reqs[0].SerializeToString()).status == 200
        assert post(running.port, as_json(reqs[1]), JSON).status == 200
        events = stub.wait_events(2, timeout=15)  # while running: the flush interval sent them
        assert running.collector.wait_forwarded(2, 5)
        assert (running.collector.forwarded, running.collector.forward_failures) == (2, 0)
    assert {r.path for r in stub.received} == {"/batch/"}
    assert {r.api_key for r in stub.received} == {"phc_test_key"}
    stored = jsonl(running.output)
    assert [e["distinct_id"] for e in events] == [r["distinct_id"] for r in stored]
    for event, record in zip(events, stored, strict=True):
        assert event["event"] == "tbot.start"
        assert {k: v for k, v in event["properties"].items() if k.startswith("tbot.")} == (
            record["properties"]
        )
        # the collector host's OS/Python must not pass for the runner's
        assert not any(k.startswith(("$os", "$python")) for k in event["properties"])
        assert datetime.fromisoformat(event["timestamp"]) == EVENT_TIME
    assert running.stderr.getvalue() == ""


def test_events_go_out_in_batches(tmp_path: Path) -> None:
    interval = forwarding.FLUSH_INTERVAL
    ids = [f"b-{i}" for i in range(6)]
    with PostHogStub() as stub, forwarding_to(tmp_path, stub.url) as running:
        started = time.monotonic()
        send(running, *ids)
        took = time.monotonic() - started
        events = stub.wait_events(len(ids), timeout=15)
        assert running.collector.wait_forwarded(len(ids), 5)
    assert sorted(e["distinct_id"] for e in events) == ids  # all, each once
    # The SDK collects for `interval` seconds per request: events sent within
    # `took` seconds can span at most this many requests (2 when took < interval).
    assert len(stub.received) <= 1 + math.ceil(took / interval)
    assert len(stub.received) < len(ids)
    assert running.stderr.getvalue() == ""


def test_a_partial_batch_goes_out_within_the_flush_interval(tmp_path: Path) -> None:
    with (
        PostHogStub() as stub,
        forwarding_to(tmp_path, stub.url, posthog_flush_interval=0.5) as running,
    ):
        send(running, "t-1")
        # One event is far from a full batch: the interval alone sends it.
        assert [e["distinct_id"] for e in stub.wait_events(1, timeout=10)] == ["t-1"]
        assert running.collector.wait_forwarded(1, 5)
        assert running.collector.forward_pending == 0


def test_stop_sends_what_is_queued(tmp_path: Path) -> None:
    with (
        PostHogStub() as stub,
        forwarding_to(tmp_path, stub.url, posthog_flush_interval=60) as running,
    ):
        send(running, "s-0", "s-1", "s-2")
        # Queued just after each 200 (the answer never waits for the SDK).
        assert wait_until(lambda: running.collector.forward_pending == 3, 5)
        assert stub.events() == []  # a minute from its interval flush
        running.collector.stop()
        # stop() returned: the queued events went out, as one batch.
        assert len(stub.received) == 1
        assert [e["distinct_id"] for e in stub.events()] == ["s-0", "s-1", "s-2"]
        assert (running.collector.forwarded, running.collector.forward_pending) == (3, 0)
    assert running.stderr.getvalue() == ""


def test_event_uuid_is_derived_from_the_event(tmp_path: Path) -> None:
    with PostHogStub() as stub, forwarding_to(tmp_path, stub.url) as running:
        send(running, "u-1", "u-1", "u-2")  # a client's retry stores u-1 twice
        running.collector.stop()
    stored = jsonl(running.output)
    uuids = [e["uuid"] for e in stub.events()]
    assert uuids == [event_uuid(record) for record in stored]
    assert uuids[0] == uuids[1] != uuids[2]  # PostHog counts the retried one once
    assert all(uuid.UUID(u).version == 5 for u in uuids)


def test_a_failed_batch_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forwarding, "RETRIES", 1)
    with (
        PostHogStub(statuses=[503]) as stub,
        forwarding_to(tmp_path, stub.url, posthog_flush_interval=0.2) as running,
    ):
        send(running, "r-1")
        assert running.collector.wait_forwarded(1, 15)
        assert (running.collector.forwarded, running.collector.forward_failures) == (1, 0)
    assert len(stub.received) == 2
    first, second = (r.events for r in stub.received)
    assert first == second
    assert running.stderr.getvalue() == ""


def test_forwarding_failure_keeps_the_event_and_answers_200(
    tmp_path: Path, refused_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(forwarding, "RETRIES", 0)
    with forwarding_to(tmp_path, refused_url, posthog_flush_interval=0.2) as running:
        send(running, "down-1")
        assert running.collector.wait_forwarded(1, 15)
        assert (running.collector.forwarded, running.collector.forward_failures) == (0, 1)
    assert [r["distinct_id"] for r in jsonl(running.output)] == ["down-1"]
    [line] = running.stderr.getvalue().splitlines()
    assert line.startswith(
        f"collector: forwarding down-1 to PostHog at {refused_url} failed "
        "(the event is in the JSONL file): "
    )
    assert "Traceback" not in running.stderr.getvalue()


def test_a_failed_batch_is_one_line_naming_its_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(forwarding, "RETRIES", 0)
    with (
        PostHogStub(status=503) as stub,
        forwarding_to(tmp_path, stub.url, posthog_flush_interval=60) as running,
    ):
        send(running, "f-0", "f-1", "f\x1b[2J")
        running.collector.stop()  # one batch, rejected
        assert running.collector.forward_failures == 3
    assert len(jsonl(running.output)) == 3
    [line] = running.stderr.getvalue().splitlines()
    assert line.startswith(
        f'collector: forwarding 3 events (f-0, f-1, "f\\u001b[2J") to PostHog at {stub.url} '
        "failed (they are in the JSONL file): APIError: "
    )
    assert "503" in line


def test_an_sdk_error_is_one_line_and_the_client_still_gets_200(
    tmp_path: Path, refused_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import posthog

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("sdk broke")

    monkeypatch.setattr(posthog.Posthog, "capture", broken)
    with forwarding_to(tmp_path, refused_url) as running:
        send(running, "x-1")
        assert wait_until(lambda: running.collector.forward_failures == 1, 5)
    assert [r["distinct_id"] for r in jsonl(running.output)] == ["x-1"]
    assert running.stderr.getvalue() == (
        "collector: not forwarding x-1 to PostHog (the event is in the JSONL file): "
        "RuntimeError: sdk broke\n"
    )


def test_stop_is_bounded_when_posthog_hangs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(forwarding, "DRAIN_SECONDS", 0.5)
    with socket.socket() as silent:  # listens, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with forwarding_to(tmp_path, url, posthog_flush_interval=60) as running:
            send(running, "h-1")
            started = time.monotonic()
            running.collector.stop()
            took = time.monotonic() - started
    assert took < forwarding.TIMEOUT  # not the request's own timeout, nor its retries
    assert running.collector.forward_pending == 1
    assert running.stderr.getvalue() == (
        "collector: stopped forwarding with 1 event(s) not confirmed by PostHog "
        "(they are in the JSONL file)\n"
    )
    assert [r["distinct_id"] for r in jsonl(running.output)] == ["h-1"]


def test_posthog_forwarding_without_the_sdk_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "posthog", None)
    with pytest.raises(CollectorError, match="needs the posthog package"):
        Collector(tmp_path / "e.jsonl", posthog_host="http://127.0.0.1:1", posthog_api_key="k")
    assert not (tmp_path / "e.jsonl").exists()


def test_posthog_host_needs_api_key(tmp_path: Path) -> None:
    with pytest.raises(CollectorError, match="POSTHOG_API_KEY"):
        Collector(tmp_path / "e.jsonl", posthog_host="http://127.0.0.1:1", posthog_api_key=" ")


def test_counts_without_forwarding(tmp_path: Path) -> None:
    with _run_collector(tmp_path) as running:
        c = running.collector
        assert c.wait_forwarded(0, 0)
        assert not c.wait_forwarded(1, 0)
        assert (c.forwarding, c.forwarded, c.forward_failures, c.forward_pending) == (
            False,
            0,
            0,
            0,
        )


def test_received_at_is_utc(tmp_path: Path) -> None:
    # An event without a timestamp is forwarded at the time it was received.
    req = make_request("n-1")
    req.ClearField("timestamp")
    with PostHogStub() as stub, forwarding_to(tmp_path, stub.url) as running:
        before = datetime.now(timezone.utc)
        assert post(running.port, req.SerializeToString()).status == 200
        running.collector.stop()
    [event] = stub.events()
    assert before <= datetime.fromisoformat(event["timestamp"]) <= datetime.now(timezone.utc)
