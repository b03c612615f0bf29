"""The collector's Connect endpoint: what it accepts, what it refuses, and that it never breaks."""

from __future__ import annotations

import gzip
import http.client
import io
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from collector_helpers import (
    JSON,
    PROTO,
    Running,
    as_json,
    jsonl,
    make_request,
    post,
    raw,
    run_collector,
)
from tbot_collector import MAX_BODY, METHOD_PATH, Collector, events
from tbot_collector.events import to_posthog
from teleport_auth._proto.prehog.v1alpha.tbot_pb2 import SubmitTbotEventRequest, TbotStartEvent


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    with run_collector(tmp_path) as r:
        yield r


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


@pytest.mark.parametrize(
    "content_type",
    [
        JSON,
        "application/json; charset=utf-8",
        # Compared as connect-go canonicalizes the header (mime.ParseMediaType).
        "Application/JSON;Charset=UTF-8",
        'application/json; charset="utf-8"',
        "application/json;",
    ],
)
def test_json_event_is_accepted_and_stored(running: Running, content_type: str) -> None:
    req = make_request(run_mode=TbotStartEvent.RUN_MODE_DAEMON, helper="", helper_version="")
    reply = post(running.port, as_json(req), content_type)
    assert reply.status == 200
    assert reply.json() == {}
    assert jsonl(running.output) == [to_posthog(req, datetime.now(timezone.utc))]


UNKNOWN_JSON = [
    (
        "top-level field",
        b'{"distinctId": "n-1", "start": {"version": "18.0.0"}, "sessionHint": {"a": [1]}}',
        {"tbot.version": "18.0.0", "tbot.run_mode": "unspecified"},
    ),
    (
        "field inside start",
        b'{"distinctId": "n-1", "start": {"version": "18.0.0", "destinationsSpiffe": 2}}',
        {"tbot.version": "18.0.0"},
    ),
    (
        "enum name",
        b'{"distinctId": "n-1", "start": {"runMode": "RUN_MODE_HYBRID", "joinType": "iam"}}',
        {"tbot.run_mode": "unspecified", "tbot.join_type": "iam"},
    ),
]


@pytest.mark.parametrize(
    ("body", "props"), [u[1:] for u in UNKNOWN_JSON], ids=[u[0] for u in UNKNOWN_JSON]
)
def test_json_codec_ignores_unknown_fields(
    running: Running, body: bytes, props: dict[str, Any]
) -> None:
    # A newer client's extra field is accepted, as connect-go (protojson
    # DiscardUnknown) does; the known fields are stored.
    reply = post(running.port, body, JSON)
    assert (reply.status, reply.json()) == (200, {})
    [record] = jsonl(running.output)
    assert record["distinct_id"] == "n-1"
    assert props.items() <= record["properties"].items()


def test_proto_codec_ignores_unknown_fields(running: Running) -> None:
    # field 42, varint 7: unknown to this schema
    assert post(running.port, make_request("u-1").SerializeToString() + b"\xd0\x02\x07").status == (
        200
    )
    assert [r["distinct_id"] for r in jsonl(running.output)] == ["u-1"]


@pytest.mark.parametrize("timeout", ["5000", "9999999999", "+5", ""])
def test_a_valid_connect_timeout_is_accepted(running: Running, timeout: str) -> None:
    body = make_request().SerializeToString()
    assert post(running.port, body, headers={"Connect-Timeout-Ms": timeout}).status == 200


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


@pytest.mark.parametrize(
    ("content_type", "message"),
    [(PROTO, "event is required (start)"), (JSON, "malformed application/json body")],
)
def test_empty_gzip_body_is_not_decompressed(
    running: Running, content_type: str, message: str
) -> None:
    # Zero bytes are not a gzip stream: the codec gets the empty body, and
    # answers as for any empty body (not "truncated gzip body").
    reply = post(running.port, b"", content_type, headers={"Content-Encoding": "gzip"})
    assert reply.status == 400
    error = reply.json()
    assert error["code"] == "invalid_argument"
    assert error["message"].startswith(message)
    assert "gzip" not in error["message"]
    plain = post(running.port, b"", content_type)
    assert (plain.status, plain.json()) == (reply.status, error)


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


# A valid event: refused only for what else the request holds.
_GOOD = make_request().SerializeToString()

ERRORS: list[tuple[str, dict[str, Any], int, str]] = [
    ("malformed proto", {"body": b"\xff\xff\xff"}, 400, "invalid_argument"),
    ("malformed json", {"body": b"{not json", "content_type": JSON}, 400, "invalid_argument"),
    (
        "json wrong type",
        {"body": b'{"distinctId": "a", "start": {"version": 5, "bogus": 1}}', "content_type": JSON},
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
        {"body": b'{"distinctId": "a", "later": {}}', "content_type": JSON},
        400,
        "invalid_argument",
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
    # connect-go takes no parameter but json's charset=utf-8.
    (
        "proto with charset",
        {"body": _GOOD, "content_type": "application/proto; charset=utf-8"},
        415,
        "unimplemented",
    ),
    (
        "json with another parameter",
        {"body": b"{}", "content_type": "application/json; foo=bar"},
        415,
        "unimplemented",
    ),
    (
        "json with another charset",
        {"body": b"{}", "content_type": "application/json; charset=latin-1"},
        415,
        "unimplemented",
    ),
    (
        "json with charset twice",
        {"body": b"{}", "content_type": "application/json; charset=utf-8; charset=utf-8"},
        415,
        "unimplemented",
    ),
    # connect-go: at most 10 characters, strconv.ParseInt.
    (
        "timeout not a number",
        {"body": _GOOD, "headers": {"Connect-Timeout-Ms": "abc"}},
        400,
        "invalid_argument",
    ),
    (
        "timeout of 11 digits",
        {"body": _GOOD, "headers": {"Connect-Timeout-Ms": "10000000000"}},
        400,
        "invalid_argument",
    ),
    (
        "timeout with a unit",
        {"body": _GOOD, "headers": {"Connect-Timeout-Ms": "5000ms"}},
        400,
        "invalid_argument",
    ),
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


def _head(content_length: bytes) -> bytes:
    return (
        f"POST {METHOD_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: {PROTO}\r\n".encode()
        + b"Content-Length: "
        + content_length
        + b"\r\n\r\n"
    )


def test_oversize_declared_length_is_answered_without_reading_it(running: Running) -> None:
    started = time.monotonic()
    reply = raw(running.port, _head(str(10**12).encode()) + b"\0" * 100)  # the rest never comes
    assert (reply.status, reply.json()["code"]) == (429, "resource_exhausted")
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    "value",
    [
        b"abc",
        b"\xb2",  # superscript two: str.isdigit() says yes, int() says no
        b"1\xb9",
        b"9" * 5000,  # more digits than int() converts
        b"9" * 19,  # more than 63 bits (Go's net/http refuses it too)
        b"1" * 40,
        b"+5",
        b"-1",
        b"5 5",
        b"0x10",
    ],
    ids=[
        "letters",
        "superscript",
        "digit and superscript",
        "5000 digits",
        "past 63 bits",
        "40 digits",
        "plus sign",
        "negative",
        "two numbers",
        "hex",
    ],
)
def test_bad_content_length_is_400_never_500(running: Running, value: bytes) -> None:
    reply = raw(running.port, _head(value))
    assert (reply.status, reply.json()["code"]) == (400, "invalid_argument")
    assert reply.json()["message"] == "invalid Content-Length"
    assert running.stderr.getvalue() == ""  # not an internal error
    assert post(running.port, make_request().SerializeToString()).status == 200


def test_content_length_with_leading_zeros_is_its_value(running: Running) -> None:
    body = make_request("z-1").SerializeToString()
    reply = raw(running.port, _head(b"0" * 30 + str(len(body)).encode()) + body)
    assert reply.status == 200
    assert [r["distinct_id"] for r in jsonl(running.output)] == ["z-1"]


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST " + METHOD_PATH.encode() + b" HTTP/1.1\r\nContent-Type: application/proto\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"POST /a b HTTP/1.1\r\n\r\n",
    ],
    ids=["bad chunk size", "bad request line"],
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


def _boom(req: SubmitTbotEventRequest, received_at: datetime) -> dict[str, Any]:
    raise RuntimeError("boom\nsecond line")


def test_handler_exception_is_internal_and_one_line(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "to_posthog", _boom)
    reply = post(running.port, make_request().SerializeToString())
    assert (reply.status, reply.json()) == (500, {"code": "internal", "message": "internal error"})
    monkeypatch.undo()
    assert post(running.port, make_request().SerializeToString()).status == 200
    err = running.stderr.getvalue()
    assert err.count("\n") == 1
    assert f"internal error handling POST {METHOD_PATH} (Content-Type: {PROTO})" in err
    assert "RuntimeError: boom second line" in err
    assert "Traceback" not in err


def test_path_values_are_escaped_in_the_log(
    running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A client's request line reaches the log line of an internal error: no
    # terminal control (OSC title, clear screen, bell, CSI as the one-byte C1
    # \x9b, backspace) gets through raw. (The Content-Type it shows is one of
    # the accepted ones: anything more was refused with 415 before.)
    monkeypatch.setattr(events, "to_posthog", _boom)
    body = make_request().SerializeToString()
    request = (
        b"POST " + METHOD_PATH.encode() + b"?t=\x1b]0;owned\x07\x9b2J\x08 HTTP/1.1\r\n"
        b"Content-Type: Application/Proto\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    assert raw(running.port, request).status == 500
    err = running.stderr.getvalue()
    assert err.count("\n") == 1
    assert not any(ch in err for ch in "\x1b\x07\x9b\x08")
    assert "?t=\\x1b]0;owned\\x07\\x9b2J\\x08" in err
    assert "(Content-Type: Application/Proto)" in err


def test_event_fields_are_escaped_on_stdout(running: Running) -> None:
    req = make_request("id\x1b[2J", version="1\x9b0m", helper="gha:\u202eevil", helper_version="")
    assert post(running.port, req.SerializeToString()).status == 200
    # The line is printed after the answer: stop() waits (bounded) for that request.
    running.collector.stop()
    out = running.stdout.getvalue()
    assert out.count("\n") == 1
    assert not any(ch in out for ch in "\x1b\x9b\u202e")
    assert 'distinct_id="id\\u001b[2J"' in out


def test_stopped_collector_refuses_to_store(tmp_path: Path) -> None:
    c = Collector(tmp_path / "e.jsonl", stdout=io.StringIO())
    c.stop()
    c.stop()  # idempotent
    with pytest.raises(OSError):  # noqa: PT011 - any connection error will do
        post(c.port, make_request().SerializeToString())
