"""Reading and validating the inputs every member of the family shares.

Composite actions get no ``INPUT_*`` variables of their own: each action.yml
maps its inputs into the step's environment as ``INPUT_<NAME>`` (see
``env_name``). Error messages name the input and say what was expected. They
never repeat the value of ``proxy`` or ``token``. A member's own inputs are
read by its description (``teleport_auth.family``) with the helpers here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from teleport_auth.gha import ActionFailure
from teleport_auth.goduration import DurationError, parse_duration_ns
from teleport_auth.record import Record

# Any whitespace or control character (C0, DEL, C1).
_BAD_CHARS = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
# Underscores too: not RFC 1123, but resolvers (and tbot) take them, e.g. a
# docker-compose service name.
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")
_CA_PIN = re.compile(r"^sha256:[0-9a-fA-F]{64}$")
# A Teleport proxy port: at most five ASCII digits (checked before int(), which
# refuses very long digit strings with a ValueError of its own).
_PORT = re.compile(r"[0-9]{1,5}")

_STRICT_TRUE = {"true", "True", "TRUE"}
_STRICT_FALSE = {"false", "False", "FALSE"}
_GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_GO_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


class InputError(ActionFailure):
    """A bad input: the message names the input and what was expected."""


class Inputs(Record):
    """The shared inputs, validated."""

    __slots__ = (
        "ca_pins",
        "certificate_ttl",
        "disable_env_vars",
        "notices",
        "proxy",
        "token",
        "warnings",
    )

    def __init__(
        self,
        proxy: str,
        token: str,
        certificate_ttl: str,
        ca_pins: tuple[str, ...],
        *,
        disable_env_vars: bool,
        warnings: tuple[str, ...] = (),
        notices: tuple[str, ...] = (),
    ) -> None:
        self.proxy = proxy
        self.token = token
        self.certificate_ttl = certificate_ttl
        self.ca_pins = ca_pins
        self.disable_env_vars = disable_env_vars
        # Values accepted as the original accepts them, but worth a ::warning::.
        self.warnings = warnings
        # What the step changed in a value, worth a ::notice:: (a proxy URL made an address).
        self.notices = notices


class Consent(Record):
    """Whether the user opted in to anonymous telemetry, and why not if the value was odd."""

    __slots__ = ("enabled", "warning")

    def __init__(self, enabled: bool, warning: str = "") -> None:
        self.enabled = enabled
        self.warning = warning


def env_name(name: str) -> str:
    """The variable action.yml maps input ``name`` to: ``ca-pins`` -> ``INPUT_CA_PINS``."""
    return "INPUT_" + name.upper().replace("-", "_")


def raw_input(env: Mapping[str, str], name: str) -> str:
    """The input as the runner passed it; bytes that are not UTF-8 are refused, naming it."""
    value = env.get(env_name(name), "")
    require_utf8(name, value)
    return value


def require_utf8(name: str, value: str) -> None:
    """Python keeps environment bytes that are not UTF-8 as lone surrogates (PEP 383).

    No config, output or message can carry them (tbot's YAML parser refuses them
    even escaped), so they are refused here, without repeating the value.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(
            f"Input '{name}' must be UTF-8 text, and it holds bytes that are not "
            "(is the runner's environment in another encoding?)."
        ) from None


def shown(value: str) -> str:
    """A short, single-line rendering of a non-secret value for an error message."""
    text = value if len(value) <= 40 else value[:37] + "..."
    return repr(text)


# A URL's scheme (RFC 3986): what tbot's address parser splits off before the host.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# The schemes Teleport's ParseAddr takes for an address; only the host part is used.
_PROXY_SCHEMES = frozenset({"https", "http", "tcp"})
_PROXY_EXPECTED = (
    "Teleport Proxy address as host[:port] or https://host[:port], e.g. tele.example.com:443"
)


def parse_proxy(value: str) -> tuple[str, str]:
    """The proxy as tbot is given it (``host[:port]``), and a notice when a URL was normalised.

    tbot (Teleport's ParseAddr) reads ``host:port``, or a ``tcp``, ``http`` or
    ``https`` URL of which it keeps the host part; the original passes the value
    on unchanged. Here a URL form becomes ``host[:port]`` (also for
    ``TELEPORT_PROXY``), and anything beyond the host (a path other than ``/``,
    a query, user info) is refused rather than silently dropped.
    """
    proxy = value.strip()
    expected = _PROXY_EXPECTED
    if not proxy:
        raise InputError(f"Input 'proxy' is required: the {expected}.")
    if _BAD_CHARS.search(proxy):
        raise InputError(
            f"Input 'proxy' must not contain whitespace or control characters: give the {expected}."
        )
    scheme = _SCHEME.match(proxy)
    if scheme is not None:
        if scheme.group(1).lower() not in _PROXY_SCHEMES:
            raise InputError(
                f"Input 'proxy' must be the {expected}: tbot takes only an https://, http:// "
                "or tcp:// URL there."
            )
        # The URL's host part, as tbot keeps it; one trailing "/" is no path.
        proxy = proxy[scheme.end() :].removesuffix("/")
    if "://" in proxy or any(c in proxy for c in "/?#@\\"):
        raise InputError(f"Input 'proxy' must be the {expected}, without a user, path or query.")
    host, port = _split_host_port(proxy)
    if port is not None and not (_PORT.fullmatch(port) and 1 <= int(port) <= 65535):
        raise InputError(f"Input 'proxy' has an invalid port: expected the {expected}.")
    if not _valid_host(host):
        raise InputError(f"Input 'proxy' has an invalid host name: expected the {expected}.")
    notice = f"Input 'proxy' is a URL: tbot is given the address {proxy}." if scheme else ""
    return proxy, notice


def _split_host_port(proxy: str) -> tuple[str, str | None]:
    if proxy.startswith("["):  # [ipv6]:port
        end = proxy.find("]")
        if end == -1:
            return proxy, None
        rest = proxy[end + 1 :]
        if rest and not rest.startswith(":"):
            return proxy, None
        return proxy[: end + 1], (rest[1:] if rest else None)
    if proxy.count(":") == 1:
        host, port = proxy.split(":")
        return host, port
    return proxy, None


def _valid_host(host: str) -> bool:
    if host.startswith("[") and host.endswith("]"):
        try:
            import ipaddress  # noqa: PLC0415 - only an [IPv6] proxy needs it

            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
        return True
    if not host or len(host) > 253:
        return False
    labels = host.rstrip(".").split(".")
    return all(_HOST_LABEL.match(label) for label in labels)


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP literal (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    import ipaddress  # noqa: PLC0415 - only a caller with a host to check needs it

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def validate_token(value: str) -> str:
    token = value.strip()
    if not token:
        raise InputError("Input 'token' is required: the name of the bot's GitHub join token.")
    if _BAD_CHARS.search(token):
        raise InputError(
            "Input 'token' must be a join token name without whitespace or control characters."
        )
    return token


def validate_resource_name(name: str, value: str, what: str) -> str:
    """A required name (a cluster, an app, a user): no whitespace or control characters.

    ``what`` says what the input is, e.g. "the name of the application in Teleport".
    """
    text = value.strip()
    if not text:
        raise InputError(f"Input '{name}' is required: {what}.")
    if _BAD_CHARS.search(text):
        raise InputError(
            f"Input '{name}' must be {what}, without whitespace or control characters "
            f"(got {shown(text)})."
        )
    return text


def validate_certificate_ttl(value: str) -> str:
    """Exactly what Go's time.ParseDuration accepts, and not negative; 0 means tbot's default."""
    ttl = value.strip()
    if not ttl:
        return ""
    try:
        nanoseconds = parse_duration_ns(ttl)
    except DurationError as exc:
        reason = "too long for Go's time.Duration" if str(exc) == "overflow" else "not valid"
        raise InputError(
            f"Input 'certificate-ttl' must be a Go duration such as 90m or 1h30m; "
            f"{shown(ttl)} is {reason}."
        ) from None
    if nanoseconds < 0:
        raise InputError(
            f"Input 'certificate-ttl' must not be negative (got {shown(ttl)}); "
            "give a duration such as 90m or 1h30m."
        )
    return ttl


def validate_ca_pins(value: str) -> tuple[str, ...]:
    pins = []
    for number, line in enumerate(value.splitlines(), start=1):
        pin = line.strip()
        if not pin:
            continue
        if not _CA_PIN.match(pin):
            raise InputError(
                f"Input 'ca-pins' line {number} must be a CA pin of the form "
                f"sha256:<64 hex digits>, as printed by `tctl status`."
            )
        # Teleport compares pins as lower-case hex strings.
        pins.append(pin.lower())
    return tuple(pins)


def strict_bool(name: str, value: str) -> bool:
    """A YAML 1.2 core-schema boolean, as actions/core's getBooleanInput; empty means false."""
    text = value.strip()
    if not text or text in _STRICT_FALSE:
        return False
    if text in _STRICT_TRUE:
        return True
    raise InputError(
        f"Input '{name}' must be a boolean: true | True | TRUE | false | False | FALSE "
        f"(got {shown(text)})."
    )


def lenient_bool(name: str, value: str) -> tuple[bool, str]:
    """The original's parsing: ``true``/``1`` (any case, trimmed) on, anything else off.

    Returns the value and a warning for a value that is neither on nor a plain
    ``false``/``0``/empty (``yes``, ``on``): off, as in the original, but said.
    """
    text = value.strip().lower()
    if text in {"true", "1"}:
        return True, ""
    if text in {"", "false", "0"}:
        return False, ""
    return False, (
        f"Input '{name}' should be true or false (got {shown(value.strip())}); "
        f"it is treated as false, as the original action does."
    )


def go_parse_bool(value: str) -> bool | None:
    """Go's strconv.ParseBool: True, False, or None where Go returns an error."""
    if value in _GO_TRUE:
        return True
    if value in _GO_FALSE:
        return False
    return None


def telemetry_consent(env: Mapping[str, str]) -> Consent:
    """Opt-in: the input when given, else the job's TELEPORT_ANONYMOUS_TELEMETRY as tbot reads it.

    An unexpected value never stops authentication: it warns and leaves telemetry off.
    """
    given = raw_input(env, "anonymous-telemetry").strip()
    if given:
        lowered = given.lower()
        if lowered in {"true", "1"}:
            return Consent(True)
        if lowered in {"false", "0"}:
            return Consent(False)
        return Consent(
            False,
            f"Input 'anonymous-telemetry' should be true or false (got {shown(given)}); "
            "anonymous telemetry stays off.",
        )
    job_value = env.get("TELEPORT_ANONYMOUS_TELEMETRY", "")
    if not job_value:
        return Consent(False)
    parsed = go_parse_bool(job_value)
    if parsed is None:
        return Consent(
            False,
            f"TELEPORT_ANONYMOUS_TELEMETRY={shown(job_value)} is not a boolean "
            "(1, t, true, 0, f, false, ...); anonymous telemetry stays off.",
        )
    return Consent(parsed)


def read_inputs(env: Mapping[str, str]) -> Inputs:
    """Validate the shared inputs; raise InputError for the first bad one."""
    disable_env_vars, warning = lenient_bool("disable-env-vars", raw_input(env, "disable-env-vars"))
    proxy, notice = parse_proxy(raw_input(env, "proxy"))
    return Inputs(
        proxy=proxy,
        token=validate_token(raw_input(env, "token")),
        certificate_ttl=validate_certificate_ttl(raw_input(env, "certificate-ttl")),
        ca_pins=validate_ca_pins(raw_input(env, "ca-pins")),
        disable_env_vars=disable_env_vars,
        warnings=(warning,) if warning else (),
        notices=(notice,) if notice else (),
    )
