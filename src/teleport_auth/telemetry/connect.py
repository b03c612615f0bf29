"""A Connect-protocol unary call (https://connectrpc.com/docs/protocol) over requests.

Only what SubmitTbotEvent needs: binary protobuf, no compression, one POST.
The request is prepared by hand rather than through ``Session.request`` so
nothing from the session or the machine joins it: no session headers, no
cookies, no ``.netrc`` credentials. The environment still decides proxies and
an explicit CA bundle (``REQUESTS_CA_BUNDLE``); otherwise the session from
tls.py trusts the machine's store.

Only the sender's background thread imports this module (requests, protobuf).
"""

from __future__ import annotations

import contextlib
import http
import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any, cast

import requests
import urllib3
import urllib3.exceptions
from google.protobuf.message import DecodeError

from teleport_auth import __version__
from teleport_auth._proto.prehog.v1alpha import tbot_pb2
from teleport_auth.telemetry import METHOD_PATH
from teleport_auth.telemetry.result import CallResult

PROTO_CONTENT_TYPE = "application/proto"
# Enough for any Connect error or SubmitTbotEventResponse; more is not read.
MAX_RESPONSE_BYTES = 64 * 1024
_MAX_MESSAGE_CHARS = 200

# Connect codes (protocol spec), for validating a server's JSON error.
CONNECT_CODES = frozenset(
    {
        "canceled",
        "unknown",
        "invalid_argument",
        "deadline_exceeded",
        "not_found",
        "already_exists",
        "permission_denied",
        "resource_exhausted",
        "failed_precondition",
        "aborted",
        "out_of_range",
        "unimplemented",
        "internal",
        "unavailable",
        "data_loss",
        "unauthenticated",
    }
)

# The code a Connect client derives from the HTTP status when the body has none.
_STATUS_CODES = {
    400: "internal",
    401: "unauthenticated",
    403: "permission_denied",
    404: "unimplemented",
    429: "unavailable",
    502: "unavailable",
    503: "unavailable",
    504: "unavailable",
}
# Gateway errors: the request may have reached the service behind the gateway.
_MAYBE_PROCESSED = frozenset({502, 504})


def user_agent() -> str:
    return f"teleport-actions-auth/{__version__}"


def _success(status: int) -> CallResult:
    return CallResult(ok=True, code="", message="", http_status=status, sent=True, retryable=False)


def _failure(
    code: str,
    message: str,
    *,
    sent: bool,
    status: int | None = None,
    retryable: bool = False,
    refused: bool = False,
) -> CallResult:
    # Not sent is always safe to retry; otherwise only the server's own
    # "unavailable" answer says the event was not taken.
    return CallResult(
        ok=False,
        code=code,
        message=_one_line(message),
        http_status=status,
        sent=sent,
        retryable=retryable or not sent,
        refused=refused,
    )


def _one_line(text: str) -> str:
    # Server-supplied text ends up in a workflow command: printable, one line, short.
    cleaned = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    if len(cleaned) > _MAX_MESSAGE_CHARS:
        cleaned = cleaned[: _MAX_MESSAGE_CHARS - 3] + "..."
    return cleaned


def _media_type(value: str | None) -> str:
    return (value or "").split(";", 1)[0].strip().lower()


def _status_text(status: int) -> str:
    try:
        return f"HTTP {status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def _read_bounded(response: requests.Response, deadline: float) -> bytes | None:
    """Up to MAX_RESPONSE_BYTES of the raw body, by the deadline; None when it is larger.

    Each read on the socket may wait the whole read timeout, set once before the
    headers; so a timer shuts the socket's reading side at the deadline, and
    the read in progress ends at once.
    """
    late = threading.Event()

    def give_up() -> None:
        late.set()
        with contextlib.suppress(Exception):  # already closed, or nothing to shut
            response.raw.shutdown()

    watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), give_up)
    watchdog.daemon = True
    watchdog.start()
    body = bytearray()
    try:
        while len(body) <= MAX_RESPONSE_BYTES:
            if late.is_set() or time.monotonic() > deadline:
                raise TimeoutError("response body too slow")
            try:
                # decode_content=False: we asked for identity and refuse anything else.
                chunk = response.raw.read(MAX_RESPONSE_BYTES + 1 - len(body), decode_content=False)
            except Exception:
                if late.is_set():
                    raise TimeoutError("response body too slow") from None
                raise
            if late.is_set():  # cut short by the timer: not the whole body
                raise TimeoutError("response body too slow")
            if not chunk:
                return bytes(body)
            body += chunk
        return None
    finally:
        watchdog.cancel()


def _error_from_response(status: int, body: bytes) -> CallResult:
    code = ""
    message = ""
    try:
        parsed = json.loads(body) if body else None
    except (ValueError, RecursionError):
        # Not JSON (an HTML error page), or hostile nesting: use the status.
        parsed = None
    if isinstance(parsed, dict):
        raw_code = parsed.get("code")
        if isinstance(raw_code, str) and raw_code in CONNECT_CODES:
            code = raw_code
            raw_message = parsed.get("message")
            message = raw_message if isinstance(raw_message, str) else ""
    if not code:
        code = _STATUS_CODES.get(status, "unknown")
    if 300 <= status < 400:
        message = f"unexpected redirect ({_status_text(status)}), not followed"
    elif message:
        message = f"{_status_text(status)}: {message}"
    else:
        message = _status_text(status)
    # Exactly once: retry only when the answer says the event was not taken. A 502
    # or 504 from a gateway may come after the upstream processed it.
    refused = status not in _MAYBE_PROCESSED
    retryable = code == "unavailable" and refused
    return _failure(code, message, sent=True, status=status, retryable=retryable, refused=refused)


def _handle_response(response: requests.Response, deadline: float) -> CallResult:
    status = response.status_code
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    try:
        body = _read_bounded(response, deadline)
    except (TimeoutError, urllib3.exceptions.TimeoutError):
        return _failure(
            "deadline_exceeded", "response body not received in time", sent=True, status=status
        )
    except (OSError, urllib3.exceptions.HTTPError):
        return _failure(
            "unavailable", "connection lost while reading the response", sent=True, status=status
        )
    if body is None:
        return _failure(
            "internal", f"response larger than {MAX_RESPONSE_BYTES} bytes", sent=True, status=status
        )
    if encoding not in ("", "identity"):
        # Not decoded on purpose: we sent Accept-Encoding: identity.
        return _failure(
            "internal", "response uses an unrequested content encoding", sent=True, status=status
        )
    if status != 200:
        return _error_from_response(status, body)
    content_type = _media_type(response.headers.get("Content-Type"))
    if content_type != PROTO_CONTENT_TYPE:
        return _failure(
            "internal",
            f"HTTP 200 with content type {content_type or 'none'!r}, not {PROTO_CONTENT_TYPE}",
            sent=True,
            status=status,
        )
    try:
        tbot_pb2.SubmitTbotEventResponse.FromString(body)
    except DecodeError:
        return _failure(
            "internal",
            "HTTP 200 with a body that is not a SubmitTbotEventResponse",
            sent=True,
            status=status,
        )
    return _success(status)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """exc and everything it wraps: requests and urllib3 nest errors in args and .reason."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested: list[object] = [
            current.__cause__,
            current.__context__,
            getattr(current, "reason", None),
        ]
        nested.extend(current.args)
        stack.extend(item for item in nested if isinstance(item, BaseException))


def _tls_reason(exc: BaseException) -> str:
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"certificate verify failed: {cause.verify_message}"
        if isinstance(cause, ssl.SSLError) and cause.reason:
            # OpenSSL's reason code, e.g. WRONG_VERSION_NUMBER -> "wrong version number".
            return str(cause.reason).lower().replace("_", " ")
    return "TLS error"


def _not_connected_reason(exc: BaseException) -> str:
    for cause in _causes(exc):
        if isinstance(cause, (urllib3.exceptions.NameResolutionError, socket.gaierror)):
            return "DNS lookup failed"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
    for cause in _causes(exc):
        if isinstance(cause, OSError) and cause.strerror:
            return f"could not connect: {cause.strerror}"
    return "could not connect"


def _sent_failure_reason(exc: BaseException) -> str:
    for cause in _causes(exc):
        # RemoteDisconnected is a ConnectionResetError: the more telling one first.
        if isinstance(cause, http.client.RemoteDisconnected):
            return "the server closed the connection without a response"
        if isinstance(cause, ConnectionResetError):
            return "connection reset by the server"
    return "connection lost"


def _failure_from_exception(exc: Exception, timeout: float) -> CallResult:
    # Order matters: ConnectTimeout, SSLError and ProxyError are all ConnectionErrors.
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return _failure("unavailable", f"could not connect within {timeout:g} s", sent=False)
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return _failure("deadline_exceeded", f"no response within {timeout:g} s", sent=True)
    if isinstance(exc, requests.exceptions.SSLError):
        # urllib3 reports any TLS error as SSLError, including one raised after the
        # request was written. Only a rejected certificate proves nothing was sent;
        # anything else may have delivered the event, so it is not repeated.
        rejected_cert = any(isinstance(c, ssl.SSLCertVerificationError) for c in _causes(exc))
        return _failure("unavailable", f"TLS failed: {_tls_reason(exc)}", sent=not rejected_cert)
    if isinstance(exc, requests.exceptions.ProxyError):
        # Raised only before the proxy connection was up. The proxy URL may
        # hold credentials, so its text is not repeated.
        return _failure("unavailable", "could not connect through the proxy", sent=False)
    if isinstance(exc, requests.exceptions.ConnectionError):
        if any(isinstance(c, urllib3.exceptions.NewConnectionError) for c in _causes(exc)):
            return _failure("unavailable", _not_connected_reason(exc), sent=False)
        return _failure("unavailable", _sent_failure_reason(exc), sent=True)
    # Unknown territory: assume it may have been sent, so it is not repeated.
    return _failure("unknown", f"request failed ({type(exc).__name__})", sent=True)


def call_unary(
    session: requests.Session, base_url: str, body: bytes, *, timeout: float, user_agent: str
) -> CallResult:
    """POST one Connect unary request; never raises for network or protocol failures.

    ``timeout`` bounds the whole call, as Connect clients keep their deadline:
    connecting, sending and waiting for the headers, then reading the body, each
    get the time left (a per-phase timeout would let a slow server stretch the
    call to several times it). The server is told the same in Connect-Timeout-Ms.
    """
    deadline = time.monotonic() + timeout
    headers = {
        "Content-Type": PROTO_CONTENT_TYPE,
        "Connect-Protocol-Version": "1",
        "Connect-Timeout-Ms": str(max(1, int(timeout * 1000))),
        "User-Agent": user_agent,
        # Uncompressed both ways: the body is tens of bytes, and a compressed
        # answer would be a decompression step we do not need to trust.
        "Accept-Encoding": "identity",
    }
    # Host and Content-Length are added on the wire; nothing else is.
    # Deliberately neither Accept (Connect does not use it) nor Connection
    # (HTTP/1.1 keeps the connection alive by default).
    url = base_url + METHOD_PATH
    try:
        prepared = requests.Request("POST", url, headers=headers, data=body).prepare()
        settings = session.merge_environment_settings(url, {}, True, None, None)
        # total: connecting gets the time left, and waiting for the headers what
        # is left after it (urllib3 works it out; requests passes it through,
        # though its type hints name only floats).
        left = urllib3.Timeout(total=max(deadline - time.monotonic(), 0.001))
        response = session.send(
            prepared,
            proxies=settings["proxies"],
            verify=settings["verify"],
            cert=settings["cert"],
            stream=True,
            timeout=cast(Any, left),
            allow_redirects=False,
        )
    except Exception as exc:
        return _failure_from_exception(exc, timeout)
    try:
        return _handle_response(response, deadline)
    finally:
        response.close()
