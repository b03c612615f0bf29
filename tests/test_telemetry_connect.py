"""The Connect unary client against a misbehaving local endpoint (127.0.0.1 only)."""

from __future__ import annotations

import contextlib
import datetime
import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3

from fault_server import FaultServer, clear_proxy_environment, held_refused_port
from teleport_auth import __version__
from teleport_auth._proto.prehog.v1alpha import tbot_pb2
from teleport_auth.telemetry import METHOD_PATH, connect
from teleport_auth.telemetry.connect import MAX_RESPONSE_BYTES, call_unary, user_agent
from teleport_auth.telemetry.event import build_event, event_json
from teleport_auth.telemetry.result import CallResult
from teleport_auth.telemetry.wire import to_message

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

# Short, so hanging modes finish fast; long enough for a loaded CI machine.
TIMEOUT = 0.5


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_proxy_environment(monkeypatch)


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def _request() -> tbot_pb2.SubmitTbotEventRequest:
    config: Any = {
        "oneshot": True,
        "onboarding": {"join_method": "github"},
        "outputs": [{"type": "identity"}],
    }
    event = build_event(
        tbot_version="16.4.2",
        config=config,
        distinct_id="00000000-0000-4000-8000-000000000000",
        now=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
    )
    return to_message(event_json(event))


BODY = _request().SerializeToString()


def _call(session: requests.Session, url: str, timeout: float = TIMEOUT) -> CallResult:
    return call_unary(session, url, BODY, timeout=timeout, user_agent=user_agent())


# (ok, code, sent, retryable, http_status, refused) for each fault. "refused":
# the endpoint's own answer says it did not take the event.
@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        pytest.param("ok", (True, "", True, False, 200, False), id="ok"),
        pytest.param("hang", (False, "deadline_exceeded", True, False, None, False), id="hang"),
        pytest.param(
            "hang_accept",
            (False, "deadline_exceeded", True, False, None, False),
            id="hang_accept",
        ),
        # A reset after the request went out may follow a delivered event: no retry.
        pytest.param("reset", (False, "unavailable", True, False, None, False), id="reset"),
        pytest.param("http500", (False, "unknown", True, False, 500, True), id="http500"),
        pytest.param(
            "unavailable", (False, "unavailable", True, True, 503, True), id="unavailable"
        ),
        # A 200 that is no valid answer: the event may well have been taken.
        pytest.param("garbage", (False, "internal", True, False, 200, False), id="garbage"),
        pytest.param("wrong_type", (False, "internal", True, False, 200, False), id="wrong_type"),
        pytest.param("flaky", (False, "unavailable", True, True, 503, True), id="flaky-first-call"),
        pytest.param("redirect", (False, "unknown", True, False, 302, True), id="redirect"),
    ],
)
def test_fault_modes(
    session: requests.Session,
    mode: str,
    expected: tuple[bool, str, bool, bool, int | None, bool],
) -> None:
    with FaultServer(mode) as server:
        result = _call(session, server.url)
        # The server records a request before answering it, so this is settled:
        # exactly one request arrived (no hidden retry, no redirect followed).
        assert len(server.requests) == (0 if mode == "hang_accept" else 1)

    assert (
        result.ok,
        result.code,
        result.sent,
        result.retryable,
        result.http_status,
        result.refused,
    ) == expected
    assert result.ok or result.message
    assert "\n" not in result.message
    assert len(result.message) <= 200


def test_messages(session: requests.Session) -> None:
    with FaultServer("unavailable") as server:
        assert _call(session, server.url).message == (
            "HTTP 503 Service Unavailable: reporting service is overloaded"
        )
    with FaultServer("redirect") as server:
        assert "redirect" in _call(session, server.url).message
    with FaultServer("wrong_type") as server:
        assert "text/html" in _call(session, server.url).message
    with FaultServer("hang") as server:
        assert _call(session, server.url).message == f"no response within {TIMEOUT:g} s"


def test_one_deadline_bounds_the_whole_call(session: requests.Session) -> None:
    # Headers at half the deadline and the body well after it: a Connect client
    # gives up at its deadline (connect-node's timeoutMs does). With a timeout per
    # phase the body would still be read, and the event "confirmed", at 2.6 s.
    with FaultServer("slow_body", head_delay=1.0, body_delay=2.6) as server:
        result = _call(session, server.url, timeout=2.0)
        gave_up_first = not server.slow_body_sent.is_set()
    assert (result.ok, result.code, result.sent) == (False, "deadline_exceeded", True)
    assert gave_up_first  # at the deadline, not when the body came
    assert result.http_status == 200  # the headers came in time; the body did not


def test_a_slow_server_within_the_deadline_is_confirmed(session: requests.Session) -> None:
    with FaultServer("slow_body", head_delay=0.1, body_delay=0.2) as server:
        assert _call(session, server.url, timeout=5.0).ok


def test_request_headers_are_exactly_the_protocol_ones(session: requests.Session) -> None:
    with FaultServer("ok") as server:
        assert _call(session, server.url).ok
        (received,) = server.requests

    assert received.method == "POST"
    assert received.path == METHOD_PATH
    assert received.headers == {
        "Host": f"127.0.0.1:{server.port}",
        "Content-Type": "application/proto",
        "Connect-Protocol-Version": "1",
        "Connect-Timeout-Ms": "500",
        "User-Agent": f"teleport-actions-auth/{__version__}",
        "Accept-Encoding": "identity",
        "Content-Length": str(len(BODY)),
    }
    assert len(received.header_lines) == len(received.headers)  # no duplicates


def test_body_is_the_serialized_request(session: requests.Session) -> None:
    with FaultServer("ok") as server:
        assert _call(session, server.url).ok
        (received,) = server.requests

    assert received.body == BODY
    assert tbot_pb2.SubmitTbotEventRequest.FromString(received.body) == _request()


def test_session_and_machine_state_do_not_leak_into_the_request(
    session: requests.Session, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A .netrc entry for the host would make a plain requests call send Basic auth.
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password CANARY-NETRC\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    session.headers["X-Canary"] = "CANARY-HEADER"
    session.cookies.set("canary", "CANARY-COOKIE")
    session.auth = ("someone", "CANARY-AUTH")

    with FaultServer("ok") as server:
        assert _call(session, server.url).ok
        (received,) = server.requests

    names = {name.lower() for name in received.headers}
    assert not names & {"authorization", "cookie", "x-canary"}
    assert not any("CANARY" in value for value in received.headers.values())


@pytest.mark.parametrize(
    ("timeout", "header"),
    [pytest.param(5.0, "5000", id="5s"), pytest.param(0.0001, "1", id="never-zero")],
)
def test_connect_timeout_header(session: requests.Session, timeout: float, header: str) -> None:
    with FaultServer("ok") as server:
        _call(session, server.url, timeout=timeout)
        # With a 0.1 ms timeout the client gives up before the server has recorded it.
        assert server.wait_for_requests(1)
        (received,) = server.requests
    assert received.header("connect-timeout-ms") == header


def test_environment_proxy_is_used(
    session: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP(S)_PROXY is honoured, as on a runner behind a corporate proxy."""
    with FaultServer("ok") as proxy, held_refused_port() as port:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        target = f"http://127.0.0.1:{port}"
        assert _call(session, target).ok
        (received,) = proxy.requests
    # A forward proxy is sent the absolute URL of the real target.
    assert received.path == target + METHOD_PATH


# The response (status, content type, body) and the code and retryability it maps to.
# Every non-200 answer but a gateway's (502, 504) is the endpoint refusing the event.
@pytest.mark.parametrize(
    ("response", "code", "retryable"),
    [
        pytest.param((400, None, b""), "internal", False, id="400"),
        pytest.param((401, None, b""), "unauthenticated", False, id="401"),
        pytest.param((403, None, b""), "permission_denied", False, id="403"),
        pytest.param((404, "text/plain", b"not found"), "unimplemented", False, id="404"),
        pytest.param((429, None, b""), "unavailable", True, id="429"),
        pytest.param(
            (502, "text/html", b"<html>bad gateway</html>"), "unavailable", False, id="502"
        ),
        pytest.param((503, None, b""), "unavailable", True, id="503-no-body"),
        # A gateway error may follow an upstream that took the event: no retry.
        pytest.param((504, None, b""), "unavailable", False, id="504"),
        pytest.param((418, None, b""), "unknown", False, id="418"),
        pytest.param(
            (400, "application/json", b'{"code": "invalid_argument", "message": "bad event"}'),
            "invalid_argument",
            False,
            id="json-code-wins",
        ),
        pytest.param(
            (500, "application/json", b'{"code": "unavailable"}'),
            "unavailable",
            True,
            id="json-unavailable",
        ),
        pytest.param(
            (429, "application/json", b'{"code": "not-a-code"}'),
            "unavailable",
            True,
            id="json-bogus-code",
        ),
        pytest.param(
            (503, "application/json", b"[1, 2]"), "unavailable", True, id="json-not-object"
        ),
        pytest.param(
            (200, "application/proto", b"x" * (MAX_RESPONSE_BYTES + 1)),
            "internal",
            False,
            id="too-large",
        ),
        pytest.param((200, None, b""), "internal", False, id="200-no-content-type"),
        pytest.param((200, "application/json", b"{}"), "internal", False, id="200-json-not-proto"),
    ],
)
def test_status_mapping(
    session: requests.Session, response: tuple[int, str | None, bytes], code: str, retryable: bool
) -> None:
    status, content_type, body = response
    with FaultServer("respond", status=status, content_type=content_type, body=body) as server:
        result = _call(session, server.url)
    assert (result.ok, result.code, result.sent, result.retryable, result.http_status) == (
        False,
        code,
        True,
        retryable,
        status,
    )
    assert result.refused == (status not in (200, 502, 504))


def test_success_tolerates_content_type_parameters(session: requests.Session) -> None:
    with FaultServer("respond", content_type="Application/Proto; charset=binary") as server:
        assert _call(session, server.url).ok


def test_compressed_response_is_refused(session: requests.Session) -> None:
    with FaultServer("respond", headers={"Content-Encoding": "gzip"}, body=b"\x1f\x8b") as server:
        result = _call(session, server.url)
    assert (result.ok, result.code) == (False, "internal")
    assert "encoding" in result.message


def test_server_message_is_one_short_line(session: requests.Session) -> None:
    hostile = {"code": "unavailable", "message": "line one\n::error::injected\r\n" + "x" * 500}
    with FaultServer(
        "respond", status=503, content_type="application/json", body=json.dumps(hostile).encode()
    ) as server:
        result = _call(session, server.url)
    assert "\n" not in result.message
    assert "\r" not in result.message
    assert len(result.message) <= 200
    assert result.message.startswith("HTTP 503 Service Unavailable: line one ::error::injected")


def test_connection_refused_is_not_sent(session: requests.Session) -> None:
    with held_refused_port() as port:
        result = _call(session, f"http://127.0.0.1:{port}")
    assert (result.ok, result.code, result.sent, result.retryable) == (
        False,
        "unavailable",
        False,
        True,
    )
    assert result.message == "connection refused"
    assert str(port) not in result.message


def test_tls_failure_is_not_retried(session: requests.Session) -> None:
    """https:// to a plain-HTTP server: the handshake fails before any request.

    urllib3 reports TLS errors after the request was written the same way, so
    only a rejected certificate counts as "not sent": this one is not retried.
    """
    with FaultServer("ok") as server:
        result = _call(session, server.url.replace("http://", "https://"))
        assert server.requests == []
        assert server.non_http == 1  # it saw a ClientHello, not a request

    assert (result.ok, result.code, result.sent, result.retryable) == (
        False,
        "unavailable",
        True,
        False,
    )
    assert result.message.startswith("TLS failed: ")


def test_dns_failure_is_not_sent(
    session: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_getaddrinfo = socket.getaddrinfo
    looked_up: list[str] = []

    def failing_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "telemetry.invalid":
            looked_up.append(host)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", failing_getaddrinfo)
    result = _call(session, "https://telemetry.invalid")

    assert looked_up == ["telemetry.invalid"]
    assert (result.ok, result.code, result.sent, result.retryable, result.message) == (
        False,
        "unavailable",
        False,
        True,
        "DNS lookup failed",
    )


def test_unexpected_exception_is_a_result_not_a_raise(
    session: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_send(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom\nwith a second line")

    monkeypatch.setattr(session, "send", broken_send)
    result = _call(session, "https://telemetry.example.com")
    # Unknown failure: assume it may have gone out, so it is never repeated.
    assert (result.ok, result.code, result.sent, result.retryable) == (
        False,
        "unknown",
        True,
        False,
    )
    assert result.message == "request failed (RuntimeError)"


def test_user_agent() -> None:
    assert user_agent() == f"teleport-actions-auth/{__version__}"


# --- each answer mapped in full -----------------------------------------------------


def _failed(code: str, message: str, status: int | None, **flags: bool) -> CallResult:
    return CallResult(
        ok=False, code=code, message=message, http_status=status, sent=flags.get("sent", True),
        retryable=flags.get("retryable", False), refused=flags.get("refused", False),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        pytest.param(
            {"status": 400, "content_type": None, "body": b""},
            _failed("internal", "HTTP 400 Bad Request", 400, refused=True),
            id="400",
        ),
        pytest.param(
            {"status": 302, "content_type": None, "body": b""},
            _failed(
                "unknown", "unexpected redirect (HTTP 302 Found), not followed", 302, refused=True
            ),
            id="302",
        ),
        pytest.param(
            {"status": 399, "content_type": None, "body": b""},
            _failed("unknown", "unexpected redirect (HTTP 399), not followed", 399, refused=True),
            id="399",
        ),
        pytest.param(
            {"status": 300, "content_type": None, "body": b""},
            _failed(
                "unknown",
                "unexpected redirect (HTTP 300 Multiple Choices), not followed",
                300,
                refused=True,
            ),
            id="300",
        ),
        pytest.param(
            {"status": 400, "content_type": None, "body": b""},
            _failed("internal", "HTTP 400 Bad Request", 400, refused=True),
            id="400-not-a-redirect",
        ),
        pytest.param(
            {
                "status": 400,
                "content_type": "application/json",
                "body": b'{"code": "invalid_argument", "message": "bad event"}',
            },
            _failed("invalid_argument", "HTTP 400 Bad Request: bad event", 400, refused=True),
            id="json-error",
        ),
        pytest.param(
            {
                "status": 503,
                "content_type": "application/json",
                "body": b'{"code": "unavailable", "message": 5}',
            },
            _failed(
                "unavailable", "HTTP 503 Service Unavailable", 503, retryable=True, refused=True
            ),
            id="json-message-not-text",
        ),
        pytest.param(
            {"status": 200, "content_type": "application/json", "body": b"{}"},
            _failed(
                "internal",
                "HTTP 200 with content type 'application/json', not application/proto",
                200,
            ),
            id="200-json",
        ),
        pytest.param(
            {"status": 200, "content_type": None, "body": b""},
            _failed("internal", "HTTP 200 with content type 'none', not application/proto", 200),
            id="200-no-type",
        ),
        pytest.param(
            {"status": 200, "content_type": "application/proto", "body": b"\xff"},
            _failed("internal", "HTTP 200 with a body that is not a SubmitTbotEventResponse", 200),
            id="200-garbage",
        ),
        pytest.param(
            {"status": 200, "content_type": "application/proto", "body": b"x" * 65537},
            _failed("internal", "response larger than 65536 bytes", 200),
            id="too-large",
        ),
        pytest.param(
            {"status": 200, "headers": {"Content-Encoding": "gzip"}, "body": b"\x1f\x8b"},
            _failed("internal", "response uses an unrequested content encoding", 200),
            id="gzip",
        ),
        pytest.param(
            {"status": 200, "headers": {"Content-Encoding": " Identity "}, "body": b""},
            CallResult(ok=True, code="", message="", http_status=200, sent=True, retryable=False),
            id="identity-said",
        ),
        pytest.param(
            {"status": 200, "content_type": "application/proto;x=1;y=2", "body": b""},
            CallResult(ok=True, code="", message="", http_status=200, sent=True, retryable=False),
            id="type-parameters",
        ),
    ],
)
def test_each_answer_in_full(
    session: requests.Session, answer: dict[str, Any], expected: CallResult
) -> None:
    with FaultServer("respond", **answer) as server:
        assert _call(session, server.url) == expected


def test_a_response_of_exactly_the_limit_is_read(session: requests.Session) -> None:
    # An unknown length-delimited field (15) padding a valid, empty response.
    padding = MAX_RESPONSE_BYTES - 4
    body = bytes([15 << 3 | 2]) + _varint(padding) + b"p" * padding
    assert len(body) == MAX_RESPONSE_BYTES
    with FaultServer("respond", content_type="application/proto", body=body) as server:
        assert _call(session, server.url).ok


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


class OneAnswerServer:
    """Takes one request on 127.0.0.1 (a free port) and answers it with ``answer``;
    stops by itself after ``seconds``, or when the test leaves the ``with``."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._done = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(seconds)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError), self._sock:
            conn, _ = self._sock.accept()
            with conn:
                conn.settimeout(self._seconds)
                received = b""
                while b"\r\n\r\n" not in received:
                    received += conn.recv(65536)
                self.answer(conn, self._done)

    def answer(self, conn: socket.socket, done: threading.Event) -> None:
        raise NotImplementedError

    def __enter__(self) -> OneAnswerServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(self._seconds)


class CutShortServer(OneAnswerServer):
    """A head promising 100 bytes and 10 of them, then it closes (``close=True``)
    or holds the connection until the test ends."""

    def __init__(self, *, close: bool) -> None:
        self._close = close
        super().__init__(10)

    def answer(self, conn: socket.socket, done: threading.Event) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/proto\r\n"
        conn.sendall(head + b"Content-Length: 100\r\n\r\n" + b"x" * 10)
        if not self._close:
            done.wait(10)


def test_a_body_that_stops_coming_is_a_deadline(session: requests.Session) -> None:
    with CutShortServer(close=False) as server:
        result = _call(session, server.url)
    assert result == _failed("deadline_exceeded", "response body not received in time", 200)


def test_a_connection_lost_in_the_body_is_unavailable(session: requests.Session) -> None:
    with CutShortServer(close=True) as server:
        result = _call(session, server.url)
    assert result == _failed("unavailable", "connection lost while reading the response", 200)


# --- failures before an answer, from the exceptions requests raises ----------------


class Wrapper(Exception):
    """An error that holds its cause in ``.reason`` only, as urllib3's MaxRetryError does."""

    def __init__(self, reason: BaseException) -> None:
        super().__init__("wrapped")
        self.reason = reason


def _ssl_error(reason: str | None) -> ssl.SSLError:
    error = ssl.SSLError(1, "tls")
    # OpenSSL sets it (typeshed: str); here the test, None included.
    setattr(error, "reason", reason)  # noqa: B010
    return error


def _loop() -> Exception:
    """Two errors each the context of the other: the search through them still ends."""
    first, second = OSError(), ValueError()
    first.__context__, second.__context__ = second, first
    return first


def _after_a_seen_one() -> Exception:
    # The reset comes after an error met twice: meeting it again must not end the search.
    # (An OSError keeps two arguments only, requests' errors among them: the
    # repeat goes into a plain exception's arguments.)
    seen = KeyError("seen")
    return requests.exceptions.ConnectionError(ConnectionResetError(), ValueError(seen, seen))


def _refused_to_connect(strerror: str | None) -> Exception:
    # urllib3 passes the connection; what it is does not matter here.
    connection: Any = None
    new = urllib3.exceptions.NewConnectionError(connection, "failed")
    if strerror:
        new.__cause__ = OSError(113, strerror)
    return requests.exceptions.ConnectionError(Wrapper(new))


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param(
            requests.exceptions.ConnectTimeout(),
            _failed(
                "unavailable", "could not connect within 0.5 s", None, sent=False, retryable=True
            ),
            id="connect-timeout",
        ),
        pytest.param(
            requests.exceptions.ReadTimeout(),
            _failed("deadline_exceeded", "no response within 0.5 s", None),
            id="read-timeout",
        ),
        pytest.param(
            requests.exceptions.SSLError(Wrapper(_ssl_error("WRONG_VERSION_NUMBER"))),
            _failed("unavailable", "TLS failed: wrong version number", None),
            id="tls-reason",
        ),
        pytest.param(
            requests.exceptions.SSLError(_ssl_error(None)),
            _failed("unavailable", "TLS failed: TLS error", None),
            id="tls-no-reason",
        ),
        pytest.param(
            requests.exceptions.ProxyError("http://user:secret@proxy"),
            _failed(
                "unavailable",
                "could not connect through the proxy",
                None,
                sent=False,
                retryable=True,
            ),
            id="proxy",
        ),
        pytest.param(
            _refused_to_connect("No route to host"),
            _failed(
                "unavailable",
                "could not connect: No route to host",
                None,
                sent=False,
                retryable=True,
            ),
            id="no-route",
        ),
        pytest.param(
            _refused_to_connect(None),
            _failed("unavailable", "could not connect", None, sent=False, retryable=True),
            id="could-not-connect",
        ),
        pytest.param(
            requests.exceptions.ConnectionError(Wrapper(ConnectionResetError())),
            _failed("unavailable", "connection reset by the server", None),
            id="reset",
        ),
        pytest.param(
            _after_a_seen_one(),
            _failed("unavailable", "connection reset by the server", None),
            id="reset-after-a-repeat",
        ),
        pytest.param(
            # http.client's: a ConnectionResetError too, and the more telling one.
            requests.exceptions.ConnectionError(
                Wrapper(http.client.RemoteDisconnected("Remote end closed connection"))
            ),
            _failed("unavailable", "the server closed the connection without a response", None),
            id="closed-without-a-response",
        ),
        pytest.param(
            requests.exceptions.ConnectionError(_loop()),
            _failed("unavailable", "connection lost", None),
            id="connection-lost",
        ),
        pytest.param(
            RuntimeError("boom"),
            _failed("unknown", "request failed (RuntimeError)", None),
            id="unknown",
        ),
    ],
)
def test_each_failure_before_an_answer_in_full(
    session: requests.Session,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    expected: CallResult,
) -> None:
    def send(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(session, "send", send)
    assert _call(session, "https://telemetry.example.com") == expected


def test_server_text_is_cut_to_one_printable_line_of_200_characters() -> None:
    assert connect._one_line("a\x07b\u2028c\n d") == "a b c d"
    assert connect._one_line("x" * 200) == "x" * 200
    assert connect._one_line("x" * 201) == "x" * 197 + "..."


def test_an_empty_content_encoding_is_identity(session: requests.Session) -> None:
    with FaultServer("respond", headers={"Content-Encoding": ""}) as server:
        assert _call(session, server.url).ok


class EndlessBody(OneAnswerServer):
    """A 200 whose body never ends: 16 KiB every 50 ms, for at most 20 s."""

    def __init__(self) -> None:
        super().__init__(20)

    def answer(self, conn: socket.socket, done: threading.Event) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/proto\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"%x\r\n" % 16384 + b"x" * 16384 + b"\r\n"
        for _ in range(400):
            if done.wait(0.05):
                return
            conn.sendall(chunk)


def test_an_endless_body_is_read_no_further_than_the_limit(session: requests.Session) -> None:
    # Read in bounded pieces: past the limit the answer is refused at once,
    # not read to its end (20 s here; 5 s: slack for a loaded machine).
    with EndlessBody() as server:
        began = time.monotonic()
        result = _call(session, server.url, timeout=2.0)
        elapsed = time.monotonic() - began
    assert result == _failed("internal", f"response larger than {MAX_RESPONSE_BYTES} bytes", 200)
    assert elapsed < 5
