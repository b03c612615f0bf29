"""The Connect protocol's unary call as the collector speaks it: codecs, errors, limits."""

from __future__ import annotations

import json
import re
import zlib

from google.protobuf import json_format

from teleport_auth._proto.prehog.v1alpha import tbot_pb2
from teleport_auth._proto.prehog.v1alpha.tbot_pb2 import SubmitTbotEventRequest

PROTO = "application/proto"
JSON = "application/json"
MAX_BODY = 64 * 1024

# The route, from the schema itself: /prehog.v1alpha.TbotReportingService/SubmitTbotEvent.
_SERVICE = tbot_pb2.DESCRIPTOR.services_by_name["TbotReportingService"]
METHOD_PATH = f"/{_SERVICE.full_name}/{_SERVICE.methods_by_name['SubmitTbotEvent'].name}"

# Connect code -> HTTP status (Connect protocol reference, "Error Codes").
CODE_STATUS = {
    "canceled": 499,
    "unknown": 500,
    "invalid_argument": 400,
    "deadline_exceeded": 504,
    "not_found": 404,
    "already_exists": 409,
    "permission_denied": 403,
    "resource_exhausted": 429,
    "failed_precondition": 400,
    "aborted": 409,
    "out_of_range": 400,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
    "data_loss": 500,
    "unauthenticated": 401,
}

# ASCII digits only (``str.isdigit`` also takes "²"), and no more than
# fit in 63 bits, as Go's net/http parses it: anything else is a bad request.
_DIGITS = re.compile(r"[0-9]+")
_MAX_LENGTH = 2**63 - 1


class ConnectError(Exception):
    """An error answered as a Connect JSON error body."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status if status is not None else CODE_STATUS[code]
        self.headers = headers or {}

    def body(self) -> bytes:
        return json.dumps({"code": self.code, "message": self.message}).encode()


# What connect-go's handler accepts for a unary call, after canonicalizing the header:
# its codec names "proto", "json" and "json; charset=utf-8", so no other parameter.
CONTENT_TYPES = {
    PROTO: PROTO,
    JSON: JSON,
    f"{JSON}; charset=utf-8": JSON,
}
# Go's MIME token: printable ASCII but space and ()<>@,;:\"/[]?=
_WORD = r"[!#$%&'*+.^_`{|}~0-9A-Za-z-]+"
_SIMPLE_TYPE = re.compile(r"[a-z0-9.-]*/?[a-z0-9.-]*")
_MEDIA_TYPE = re.compile(rf"\s*({_WORD})(?:/({_WORD}))?\s*")
_PARAMETER = re.compile(rf';\s*({_WORD})\s*=\s*({_WORD}|"(?:[^"\\]|\\.)*")\s*')


def canonical_content_type(value: str) -> str:
    """A Content-Type as connect-go compares it (canonicalizeContentType).

    Go's mime.ParseMediaType then FormatMediaType: type and parameter names in
    lower case, the charset's value too, parameters sorted, "; " between them,
    a trailing ";" ignored. What does not parse stays as given (and matches nothing).
    """
    if _SIMPLE_TYPE.fullmatch(value):
        return value
    base = _MEDIA_TYPE.match(value)
    if base is None:
        return value
    media_type = base.group(1).lower() + (f"/{base.group(2).lower()}" if base.group(2) else "")
    rest = value[base.end() :]
    params: dict[str, str] = {}
    while rest.strip() and rest.strip() != ";":
        match = _PARAMETER.match(rest)
        if match is None or match.group(1).lower() in params:
            return value
        name, raw = match.group(1).lower(), match.group(2)
        unquoted = re.sub(r"\\(.)", r"\1", raw[1:-1]) if raw.startswith('"') else raw
        params[name] = unquoted.lower() if name == "charset" else unquoted
        rest = rest[match.end() :]
    return media_type + "".join(f"; {name}={_quoted(params[name])}" for name in sorted(params))


def _quoted(value: str) -> str:
    if re.fullmatch(_WORD, value):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def timeout_ms(value: str | None) -> int | None:
    """Connect-Timeout-Ms as connect-go reads it: at most 10 characters, a base-10
    integer (strconv.ParseInt); empty or missing is no timeout."""
    text = (value or "").strip(" \t")
    if not text:
        return None
    if len(text) > 10 or not _TIMEOUT.fullmatch(text):
        raise ConnectError(
            "invalid_argument", "connect-timeout-ms must be an integer of at most 10 digits"
        )
    return int(text)


_TIMEOUT = re.compile(r"[+-]?[0-9]+")


def too_large() -> ConnectError:
    return ConnectError("resource_exhausted", f"request body larger than {MAX_BODY} bytes")


def content_length(values: list[str]) -> int | None:
    """The declared body length (None: no Content-Length), or a ConnectError."""
    lengths = {v.strip(" \t") for v in values}
    if not lengths:
        return None
    text = next(iter(lengths))
    digits = text.lstrip("0") or "0"
    if len(lengths) != 1 or not _DIGITS.fullmatch(text) or len(digits) > 19:
        raise ConnectError("invalid_argument", "invalid Content-Length")
    length = int(digits)
    if length > _MAX_LENGTH:
        raise ConnectError("invalid_argument", "invalid Content-Length")
    if length > MAX_BODY:
        raise too_large()
    return length


def gunzip(body: bytes) -> bytes:
    """A gzip body, inflated to at most MAX_BODY bytes."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(body, MAX_BODY + 1)
    except zlib.error as exc:
        raise ConnectError("invalid_argument", f"malformed gzip body: {exc}") from exc
    if len(out) > MAX_BODY:
        raise too_large()
    if not d.eof:
        raise ConnectError("invalid_argument", "truncated gzip body")
    return out


def decode(codec: str, body: bytes) -> SubmitTbotEventRequest:
    """The request in either codec; unknown fields are skipped, as connect-go does."""
    req = SubmitTbotEventRequest()
    try:
        if codec == PROTO:
            req.ParseFromString(body)
        else:
            # A newer client may send fields (or enum names) this schema does
            # not know: the reference servers discard them (protojson's
            # DiscardUnknown), so an older collector keeps accepting events.
            json_format.Parse(body.decode("utf-8"), req, ignore_unknown_fields=True)
    # Whatever the parser raises (DecodeError, ParseError, UnicodeError,
    # RecursionError on deep nesting) the body is the client's fault.
    except Exception as exc:
        raise ConnectError(
            "invalid_argument", f"malformed {codec} body: {type(exc).__name__}: {exc}"
        ) from exc
    if req.WhichOneof("event") != "start":
        raise ConnectError("invalid_argument", "event is required (start)")
    if not req.distinct_id:
        raise ConnectError("invalid_argument", "distinct_id is required")
    return req


def ok_body(codec: str) -> bytes:
    """An empty SubmitTbotEventResponse in the request's codec."""
    return b"{}" if codec == JSON else b""
