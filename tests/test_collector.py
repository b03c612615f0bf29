"""The prehog-compatible collector: Connect protocol, JSONL store, PostHog forwarding, CLI."""

from __future__ import annotations

import gzip
import http.client
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from posthog_stub import PostHogStub
from teleport_auth import collector as collector_mod
from teleport_auth._proto.prehog.v1alpha.tbot_pb2 import SubmitTbotEventRequest, TbotStartEvent
from teleport_auth.collector import MAX_BODY, Collector, describe, main, to_posthog
from teleport_auth.telemetry import METHOD_PATH

REPO = Path(__file__).resolve().parents[1]
PROTO = "application/proto"
JSON = "application/json"
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6}|\.\d{9})?Z$")
TBOT_PROPS = {
    "tbot.run_mode",
    "tbot.version",
    "tbot.join_type",
    "tbot.helper",
    "tbot.helper_version",
    "tbot.destinations_other",
    "tbot.destinations_database",
    "tbot.destinations_kubernetes",
    "tbot.destinations_application",
}


def make_request(
    distinct_id: str = "0b5c1c4e-8f7a-4c52-9d7e-3c1f2a9b8e11", **start: Any
) -> SubmitTbotEventRequest:
    fields: dict[str, Any] = {
        "run_mode": TbotStartEvent.RUN_MODE_ONE_SHOT,
        "version": "16.4.2",
        "join_type": "github",
        "helper": "gha:teleport-actions/auth",
        "helper_version": "1.0.0",
        "destinations_other": 1,
    }
    fields.update(start)
    req = SubmitTbotEventRequest(distinct_id=distinct_id, start=TbotStartEvent(**fields))
    req.timestamp.FromDatetime(datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=timezone.utc))
    return req


def as_json(req: SubmitTbotEventRequest) -> bytes:
    from google.protobuf import json_format

    return json_format.MessageToJson(req).encode()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        assert self.headers.get("content-type") == JSON
        return json.loads(self.body)


def post(
    port: int,
    body: bytes | Iterator[bytes] | None,
    content_type: str | None = PROTO,
    *,
    method: str = "POST",
    path: str = METHOD_PATH,
    headers: dict[str, str] | None = None,
    chunked: bool = False,
) -> Reply:
    h = {"Connect-Protocol-Version": "1"}
    if content_type is not None:
        h["Content-Type"] = content_type
    h.update(headers or {})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=h, encode_chunked=chunked)
        resp = conn.getresponse()
        data = resp.read()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


def raw(port: int, data: bytes) -> Reply:
    """Send raw bytes, read the answer (the server closes after it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        resp = http.client.HTTPResponse(sock)
        resp.begin()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())


def jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    text = path.read_text()
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


@dataclass
class Running:
    collector: Collector
    output: Path
    stdout: io.StringIO
    stderr: io.StringIO

    @property
    def port(self) -> int:
        return self.collector.port


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    out, err = io.StringIO(), io.StringIO()
    output = tmp_path / "events.jsonl"
    with Collector(output, stdout=out, stderr=err) as c:
        yield Running(c, output, out, err)


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK posts with requests, which honours proxy variables.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


# ---------------------------------------------------------------------------
# Accepted events


def test_binary_event_is_accepted_and_stored(running: Running) -> None:
    req = make_request()
    reply = post(running.port, req.SerializeToString())
    assert (reply.status, reply.headers["content-type"], reply.body) == (200, PROTO, b"")
    running.collector.stop()
    assert jsonl(running.output) == [to_posthog(req, datetime.now(timezone.utc))]
    assert running.collector.events == 1
    assert running.stdout.getvalue() == (
        "tbot.start distinct_id=0b5c1c4e-8f7a-4c52-9d7e-3c1f2a9b8e11 version=16.4.2 "
        "run_mode=one-shot join=github helper=gha:teleport-actions/auth@1.0.0 "
        "destinations=other:1,db:0,kube:0,app:0\n"
    )
    assert running.stderr.getvalue() == ""


@pytest.mark.parametrize("content_type", [JSON, "application/json; charset=utf-8"])
def test_json_event_is_accepted_and_stored(running: Running, content_type: str) -> None:
    req = make_request(run_mode=TbotStartEvent.RUN_MODE_DAEMON, helper="", helper_version="")
    reply = post(running.port, as_json(req), content_type)
    assert reply.status == 200
    assert reply.json() == {}
    assert jsonl(running.output) == [to_posthog(req, datetime.now(timezone.utc))]


def test_protocol_version_header_is_optional(running: Running) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", running.port, timeout=5)
    conn.request("POST", METHOD_PATH, make_request().SerializeToString(), {"Content-Type": PROTO})
    assert conn.getresponse().status == 200
    conn.close()
    assert len(jsonl(running.output)) == 1


def test_gzip_and_chunked_bodies_are_accepted(running: Running) -> None:
    body = make_request().SerializeToString()
    assert post(running.port, gzip.compress(body), headers={"Content-Encoding": "gzip"}).status == (
        200
    )
    pieces = iter([body[:5], body[5:]])
    assert post(running.port, pieces, chunked=True).status == 200
    assert len(jsonl(running.output)) == 2


def padded(total: int) -> bytes:
    """A valid request of exactly ``total`` bytes (the padding is an unknown field)."""
    base = make_request().SerializeToString()
    for pad in range(total - len(base), 0, -1):
        # field 15, wire type 2 (bytes): tag, varint length, payload.
        length, n = b"", pad
        while True:
            length += bytes([(n & 0x7F) | (0x80 if n > 0x7F else 0)])
            n >>= 7
            if not n:
                break
        data = base + b"\x7a" + length + b"x" * pad
        if len(data) == total:
            return data
    raise AssertionError("no padding fits")


def test_body_limit_is_64_kib(running: Running) -> None:
    assert post(running.port, padded(MAX_BODY)).status == 200
    reply = post(running.port, padded(MAX_BODY + 1))
    assert (reply.status, reply.json()["code"]) == (429, "resource_exhausted")
    assert len(jsonl(running.output)) == 1


def test_concurrent_events_each_get_one_line(running: Running) -> None:
    statuses: list[int] = []

    def send(i: int) -> None:
        statuses.append(post(running.port, make_request(f"id-{i}").SerializeToString()).status)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 16
    assert sorted(r["distinct_id"] for r in jsonl(running.output)) == sorted(
        f"id-{i}" for i in range(16)
    )


# ---------------------------------------------------------------------------
# Errors: exact status, Connect JSON code, nothing stored, server still fine


def _timestamp_out_of_range() -> bytes:
    req = make_request()
    req.ClearField("timestamp")
    req.timestamp.seconds = 10**12  # past year 9999
    return req.SerializeToString()


ERRORS: list[tuple[str, dict[str, Any], int, str]] = [
    ("malformed proto", {"body": b"\xff\xff\xff"}, 400, "invalid_argument"),
    ("malformed json", {"body": b"{not json", "content_type": JSON}, 400, "invalid_argument"),
    (
        "json unknown field",
        {"body": b'{"distinctId": "a", "start": {}, "bogus": 1}', "content_type": JSON},
        400,
        "invalid_argument",
    ),
    (
        "json unknown enum name",
        {"body": b'{"distinctId": "a", "start": {"runMode": "FAST"}}', "content_type": JSON},
        400,
        "invalid_argument",
    ),
    ("json not utf-8", {"body": b"\xff{}", "content_type": JSON}, 400, "invalid_argument"),
    (
        "proto missing event",
        {"body": SubmitTbotEventRequest(distinct_id="a").SerializeToString()},
        400,
        "invalid_argument",
    ),
    (
        "json missing event",
        {"body": b'{"distinctId": "a"}', "content_type": JSON},
        400,
        ("invalid_argument"),
    ),
    ("empty body", {"body": b""}, 400, "invalid_argument"),
    (
        "missing distinct_id",
        {"body": make_request(distinct_id="").SerializeToString()},
        400,
        "invalid_argument",
    ),
    ("timestamp out of range", {"body": _timestamp_out_of_range()}, 400, "invalid_argument"),
    (
        "protocol version 2",
        {"body": b"", "headers": {"Connect-Protocol-Version": "2"}},
        400,
        "invalid_argument",
    ),
    (
        "bad gzip",
        {"body": b"not gzip", "headers": {"Content-Encoding": "gzip"}},
        400,
        "invalid_argument",
    ),
    (
        "unknown method",
        {"body": b"", "path": "/prehog.v1alpha.TbotReportingService/SubmitOtherEvent"},
        404,
        "unimplemented",
    ),
    ("unknown service", {"body": b"", "path": "/foo.v1.Bar/Baz"}, 404, "unimplemented"),
    ("root", {"body": b"", "path": "/"}, 404, "unimplemented"),
    ("GET", {"body": None, "method": "GET"}, 405, "unimplemented"),
    ("GET unknown path", {"body": None, "method": "GET", "path": "/x"}, 404, "unimplemented"),
    ("PUT", {"body": b"x", "method": "PUT"}, 405, "unimplemented"),
    ("custom method", {"body": None, "method": "BREW"}, 405, "unimplemented"),
    ("oversize", {"body": b"\0" * (MAX_BODY + 1)}, 429, "resource_exhausted"),
    (
        "oversize chunked",
        {"body": iter([b"\0" * 8192] * 9), "chunked": True},
        429,
        "resource_exhausted",
    ),
    (
        "oversize after gunzip",
        {"body": gzip.compress(b"\0" * (MAX_BODY + 1)), "headers": {"Content-Encoding": "gzip"}},
        429,
        "resource_exhausted",
    ),
    ("text/plain", {"body": b"x", "content_type": "text/plain"}, 415, "unimplemented"),
    ("grpc", {"body": b"x", "content_type": "application/grpc"}, 415, "unimplemented"),
    ("no content type", {"body": b"x", "content_type": None}, 415, "unimplemented"),
    (
        "unknown content encoding",
        {"body": b"x", "headers": {"Content-Encoding": "br"}},
        501,
        "unimplemented",
    ),
]


@pytest.mark.parametrize(
    ("kwargs", "status", "code"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_error_answers(running: Running, kwargs: dict[str, Any], status: int, code: str) -> None:
    kwargs = dict(kwargs)
    reply = post(running.port, kwargs.pop("body"), **kwargs)
    assert reply.status == status
    error = reply.json()
    assert error["code"] == code
    assert isinstance(error["message"], str)
    assert error["message"]
    if status == 405:
        assert reply.headers["allow"] == "POST"
    if status == 415:
        assert reply.headers["accept-post"] == f"{JSON}, {PROTO}"
    assert jsonl(running.output) == []
    # never crashes: the next good event still goes through
    assert post(running.port, make_request().SerializeToString()).status == 200
    assert running.stderr.getvalue() == ""


def test_head_is_405_without_body(running: Running) -> None:
    reply = post(running.port, None, method="HEAD")
    assert (reply.status, reply.headers["allow"], reply.body) == (405, "POST", b"")


def test_oversize_declared_length_is_answered_without_reading_it(running: Running) -> None:
    head = (
        f"POST {METHOD_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: {PROTO}\r\n"
        f"Content-Length: {10**12}\r\n\r\n"
    ).encode()
    started = time.monotonic()
    reply = raw(running.port, head + b"\0" * 100)  # the rest never comes
    assert (reply.status, reply.json()["code"]) == (429, "resource_exhausted")
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST " + METHOD_PATH.encode() + b" HTTP/1.1\r\nContent-Type: application/proto\r\n"
        b"Content-Length: abc\r\n\r\n",
        b"POST " + METHOD_PATH.encode() + b" HTTP/1.1\r\nContent-Type: application/proto\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST /a b HTTP/1.1\r\n\r\n",
    ],
    ids=["bad content-length", "bad chunk size", "bad request line"],
)
def test_malformed_http_is_invalid_argument(running: Running, request_bytes: bytes) -> None:
    reply = raw(running.port, request_bytes)
    assert (reply.status, reply.json()["code"]) == (400, "invalid_argument")
    assert post(running.port, make_request().SerializeToString()).status == 200


def test_client_hanging_up_mid_body_is_not_an_error(running: Running) -> None:
    with socket.create_connection(("127.0.0.1", running.port), timeout=5) as sock:
        sock.sendall(
            f"POST {METHOD_PATH} HTTP/1.1\r\nContent-Type: {PROTO}\r\n"
            "Content-Length: 100\r\n\r\nabc".encode()
        )
    assert post(running.port, make_request().SerializeToString()).status == 200
    running.collector.stop()
    assert len(jsonl(running.output)) == 1
    assert running.stderr.getvalue() == ""


def test_handler_exception_is_internal_and_one_line(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(req: SubmitTbotEventRequest, received_at: datetime) -> dict[str, Any]:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(collector_mod, "to_posthog", boom)
    reply = post(running.port, make_request().SerializeToString())
    assert (reply.status, reply.json()) == (500, {"code": "internal", "message": "internal error"})
    monkeypatch.undo()
    assert post(running.port, make_request().SerializeToString()).status == 200
    err = running.stderr.getvalue()
    assert err.count("\n") == 1
    assert "RuntimeError: boom second line" in err
    assert "Traceback" not in err


def test_stopped_collector_refuses_to_store(tmp_path: Path) -> None:
    c = Collector(tmp_path / "e.jsonl", stdout=io.StringIO())
    c.stop()
    c.stop()  # idempotent
    with pytest.raises(OSError):  # noqa: PT011 - any connection error will do
        post(c.port, make_request().SerializeToString())


# ---------------------------------------------------------------------------
# The PostHog mapping


RECEIVED = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
FULL = {
    "tbot.run_mode": "one-shot",
    "tbot.version": "16.4.2",
    "tbot.join_type": "github",
    "tbot.helper": "gha:teleport-actions/auth",
    "tbot.helper_version": "1.0.0",
    "tbot.destinations_other": 1,
    "tbot.destinations_database": 2,
    "tbot.destinations_kubernetes": 3,
    "tbot.destinations_application": 4,
}
COUNTS = {
    "destinations_other": 1,
    "destinations_database": 2,
    "destinations_kubernetes": 3,
    "destinations_application": 4,
}


def _without(*keys: str, **changes: Any) -> dict[str, Any]:
    props = {k: v for k, v in FULL.items() if k not in keys}
    props.update({f"tbot.{k}": v for k, v in changes.items()})
    return props


MAPPING: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("one-shot with helper", {}, FULL),
    ("daemon", {"run_mode": TbotStartEvent.RUN_MODE_DAEMON}, _without(run_mode="daemon")),
    (
        "unspecified",
        {"run_mode": TbotStartEvent.RUN_MODE_UNSPECIFIED},
        _without(run_mode="unspecified"),
    ),
    ("unknown run mode number", {"run_mode": 7}, _without(run_mode="unknown")),
    (
        "no helper",
        {"helper": "", "helper_version": ""},
        _without("tbot.helper", "tbot.helper_version"),
    ),
    ("helper without version", {"helper_version": ""}, _without("tbot.helper_version")),
    (
        "other join, zero counts",
        {"join_type": "token", **dict.fromkeys(COUNTS, 0)},
        _without(
            join_type="token",
            destinations_other=0,
            destinations_database=0,
            destinations_kubernetes=0,
            destinations_application=0,
        ),
    ),
]


@pytest.mark.parametrize(("start", "props"), [m[1:] for m in MAPPING], ids=[m[0] for m in MAPPING])
def test_posthog_mapping(start: dict[str, Any], props: dict[str, Any]) -> None:
    req = make_request("d-1", **{**COUNTS, **start})
    record = to_posthog(req, RECEIVED)
    assert record == {
        "event": "tbot.start",
        "distinct_id": "d-1",
        "timestamp": "2024-05-01T12:00:00.250Z",
        "properties": props,
    }
    assert list(record) == ["event", "distinct_id", "timestamp", "properties"]
    for key in ("tbot.destinations_other", "tbot.destinations_application"):
        assert type(record["properties"][key]) is int


@pytest.mark.parametrize(
    ("seconds", "nanos", "expected"),
    [
        (None, 0, "2025-01-02T03:04:05.678Z"),  # unset: time of receipt
        (1714564800, 0, "2024-05-01T12:00:00Z"),
        (1714564800, 123456789, "2024-05-01T12:00:00.123456789Z"),
    ],
)
def test_posthog_timestamp(seconds: int | None, nanos: int, expected: str) -> None:
    req = make_request()
    req.ClearField("timestamp")
    if seconds is not None:
        req.timestamp.seconds, req.timestamp.nanos = seconds, nanos
    # a receipt time in another zone is still written in UTC
    received = RECEIVED.astimezone(timezone(timedelta(hours=2)))
    assert to_posthog(req, received)["timestamp"] == expected
    assert RFC3339_UTC.match(expected)


def test_describe_quotes_odd_values() -> None:
    record = to_posthog(make_request("a b", version="1\n2", helper="", helper_version=""), RECEIVED)
    assert describe(record) == (
        'tbot.start distinct_id="a b" version="1\\n2" run_mode=one-shot join=github helper=- '
        "destinations=other:1,db:0,kube:0,app:0"
    )


def test_jsonl_shape(running: Running) -> None:
    post(running.port, make_request("a").SerializeToString())
    post(running.port, as_json(make_request("b", helper="")), JSON)
    text = running.output.read_text()
    assert text.count("\n") == 2
    assert text.endswith("\n")
    for line, distinct_id in zip(text.splitlines(), ["a", "b"], strict=True):
        record = json.loads(line)
        assert list(record) == ["event", "distinct_id", "timestamp", "properties"]
        assert record["event"] == "tbot.start"
        assert record["distinct_id"] == distinct_id
        assert RFC3339_UTC.match(record["timestamp"])
        assert set(record["properties"]) <= TBOT_PROPS


# ---------------------------------------------------------------------------
# PostHog forwarding


@pytest.mark.usefixtures("no_proxy")
def test_forwards_to_posthog(tmp_path: Path) -> None:
    err = io.StringIO()
    reqs = [make_request("p-1", **COUNTS), make_request("p-2", helper="", helper_version="")]
    with (
        PostHogStub() as stub,
        Collector(
            tmp_path / "e.jsonl",
            posthog_host=stub.url,
            posthog_api_key="phc_test_key",
            quiet=True,
            stderr=err,
        ) as c,
    ):
        assert post(c.port, reqs[0].SerializeToString()).status == 200
        assert post(c.port, as_json(reqs[1]), JSON).status == 200
        events = stub.wait_events(2)
        assert c.wait_forwarded(2, 5)
        assert (c.forwarded, c.forward_failures) == (2, 0)
    assert [r.path for r in stub.received] == ["/batch/", "/batch/"]
    assert {r.api_key for r in stub.received} == {"phc_test_key"}
    stored = jsonl(tmp_path / "e.jsonl")
    assert len(stored) == 2
    for event, record in zip(events, stored, strict=True):
        assert event["event"] == "tbot.start"
        assert event["distinct_id"] == record["distinct_id"]
        assert {k: v for k, v in event["properties"].items() if k.startswith("tbot.")} == (
            record["properties"]
        )
        # the collector host's OS/Python must not pass for the runner's
        assert not any(k.startswith(("$os", "$python")) for k in event["properties"])
        assert datetime.fromisoformat(event["timestamp"]) == datetime(
            2024, 5, 1, 12, 0, 0, 250000, tzinfo=timezone.utc
        )
    assert err.getvalue() == ""


@pytest.mark.usefixtures("no_proxy")
def test_forwarding_failure_keeps_the_event_and_answers_200(tmp_path: Path) -> None:
    # A bound socket that never listens: connections are refused, and no one else takes the port.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        err = io.StringIO()
        output = tmp_path / "e.jsonl"
        with Collector(
            output,
            posthog_host=f"http://127.0.0.1:{closed.getsockname()[1]}",
            posthog_api_key="phc_test_key",
            quiet=True,
            stderr=err,
        ) as c:
            assert post(c.port, make_request("down-1").SerializeToString()).status == 200
            assert c.wait_forwarded(1, 5)
            assert (c.forwarded, c.forward_failures) == (0, 1)
    assert [r["distinct_id"] for r in jsonl(output)] == ["down-1"]
    lines = err.getvalue().splitlines()
    assert len(lines) == 1
    assert "forwarding down-1 to PostHog" in lines[0]
    assert "failed" in lines[0]
    assert "Traceback" not in err.getvalue()


@pytest.mark.usefixtures("no_proxy")
def test_forwarding_rejected_by_posthog_is_one_line(tmp_path: Path) -> None:
    err = io.StringIO()
    with (
        PostHogStub(status=503) as stub,
        Collector(
            tmp_path / "e.jsonl",
            posthog_host=stub.url,
            posthog_api_key="phc_test_key",
            quiet=True,
            stderr=err,
        ) as c,
    ):
        assert post(c.port, make_request("rej-1").SerializeToString()).status == 200
        assert c.wait_forwarded(1, 5)
        assert c.forward_failures == 1
    assert len(jsonl(tmp_path / "e.jsonl")) == 1
    assert err.getvalue().count("\n") == 1
    assert "rej-1" in err.getvalue()


def test_posthog_forwarding_without_the_sdk_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The action's vendored runtime has no posthog package.
    monkeypatch.setitem(sys.modules, "posthog", None)
    with pytest.raises(collector_mod.CollectorError, match="needs the posthog package"):
        Collector(tmp_path / "e.jsonl", posthog_host="http://127.0.0.1:1", posthog_api_key="k")


def test_posthog_host_needs_api_key(tmp_path: Path) -> None:
    with pytest.raises(collector_mod.CollectorError, match="POSTHOG_API_KEY"):
        Collector(tmp_path / "e.jsonl", posthog_host="http://127.0.0.1:1", posthog_api_key=" ")


# ---------------------------------------------------------------------------
# CLI


CLI_USAGE_ERRORS: list[tuple[list[str], dict[str, str], str]] = [
    (["--posthog-host", "https://eu.i.posthog.com"], {}, "POSTHOG_API_KEY"),
    (["--posthog-host", "eu.i.posthog.com"], {"POSTHOG_API_KEY": "k"}, "http(s) URL"),
    (["--port", "70000"], {}, "--port"),
]


@pytest.mark.parametrize("case", CLI_USAGE_ERRORS, ids=["no key", "bad url", "bad port"])
def test_cli_usage_errors_exit_2(
    case: tuple[list[str], dict[str, str], str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    argv, env, message = case
    monkeypatch.delenv("POSTHOG_API_KEY", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--output", str(tmp_path / "e.jsonl")])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "e.jsonl").exists()


def test_cli_unwritable_output_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["--output", str(tmp_path / "missing" / "e.jsonl")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"collector: cannot open {tmp_path / 'missing' / 'e.jsonl'}: ")
    assert err.count("\n") == 1


def test_cli_port_in_use_exits_1(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert main(["--port", str(busy.getsockname()[1]), "--output", str(tmp_path / "e")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("collector: cannot listen on 127.0.0.1:")
    assert "Traceback" not in err


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")])
    env["PYTHONIOENCODING"] = "utf-8"
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.pop("POSTHOG_API_KEY", None)
    env.update(extra)
    return env


_STARTED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_collector_outlives_its_test() -> Iterator[None]:
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def start_cli(tmp_path: Path, *args: str, **env: str) -> tuple[subprocess.Popen[str], int, Path]:
    port_file, output = tmp_path / "port", tmp_path / "events.jsonl"
    # A safety net even if pytest itself dies: the collector stops by itself.
    safety = [] if "--exit-after" in args else ["--exit-after", "120"]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "teleport_auth.collector",
            "--output",
            str(output),
            "--port-file",
            str(port_file),
            *safety,
            *args,
        ],
        cwd=tmp_path,
        env=_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )
    _STARTED.append(proc)
    deadline = time.monotonic() + 10
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"collector did not start: {out}\n{err}")
        time.sleep(0.02)
    return proc, int(port_file.read_text()), output


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_cli_serves_and_stops_cleanly(tmp_path: Path, sig: signal.Signals) -> None:
    proc, port, output = start_cli(tmp_path)
    assert post(port, make_request("cli-1").SerializeToString()).status == 200
    assert post(port, as_json(make_request("cli-2")), JSON).status == 200
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == f"collector listening on http://127.0.0.1:{port} (events → {output})"
    assert lines[1].startswith("tbot.start distinct_id=cli-1 version=16.4.2 run_mode=one-shot")
    assert lines[2].startswith("tbot.start distinct_id=cli-2 ")
    assert lines[3:] == ["collector stopped (2 events)"]
    assert [r["distinct_id"] for r in jsonl(output)] == ["cli-1", "cli-2"]


def test_cli_exit_after_stops_by_itself(tmp_path: Path) -> None:
    proc, port, output = start_cli(tmp_path, "--exit-after", "1")
    assert post(port, make_request("ea-1").SerializeToString()).status == 200
    out, err = proc.communicate(timeout=10)  # no signal: it ends on its own
    assert proc.returncode == 0, err
    assert out.splitlines()[-1] == "collector stopped (1 events)"
    assert [r["distinct_id"] for r in jsonl(output)] == ["ea-1"]


def test_cli_kill_between_events_loses_nothing(tmp_path: Path) -> None:
    proc, port, output = start_cli(tmp_path, "--quiet")
    for i in range(2):
        assert post(port, make_request(f"k-{i}").SerializeToString()).status == 200
    proc.kill()
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert [r["distinct_id"] for r in jsonl(output)] == ["k-0", "k-1"]


def test_cli_forwards_with_key_from_env(tmp_path: Path) -> None:
    with PostHogStub() as stub:
        proc, port, _output = start_cli(
            tmp_path, "--quiet", "--posthog-host", stub.url, POSTHOG_API_KEY="phc_cli"
        )
        assert post(port, make_request("fw-1").SerializeToString()).status == 200
        proc.terminate()
        out, err = proc.communicate(timeout=15)
        # stop() drains the forwarding queue before exiting
        events = stub.wait_events(1, timeout=0)
    assert proc.returncode == 0, err
    assert err == ""
    assert out.splitlines()[-1] == "collector stopped (1 events)"
    assert [e["distinct_id"] for e in events] == ["fw-1"]
    assert stub.received[0].api_key == "phc_cli"


def test_wait_forwarded_without_forwarding(running: Running) -> None:
    assert running.collector.wait_forwarded(0, 0)
    assert not running.collector.wait_forwarded(1, 0)
    assert (running.collector.forwarded, running.collector.forward_failures) == (0, 0)
