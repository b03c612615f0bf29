"""Where the event goes: tbot's default endpoint or TELEPORT_ANONYMOUS_TELEMETRY_ADDRESS.

The override is checked strictly because it comes from the job's environment:
HTTPS only (plain HTTP only to this machine, for local tests), no credentials,
query or fragment that could ride along. Rejection messages never repeat the
value, which might hold a secret.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from teleport_auth.inputs import is_loopback
from teleport_auth.telemetry import ADDRESS_ENV, DEFAULT_ENDPOINT

# RFC 1123 host names; IP literals are checked with ipaddress instead.
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
# Visible ASCII only: no whitespace, control characters or non-ASCII look-alikes.
_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")


class EndpointRejected(ValueError):
    """The telemetry endpoint is not acceptable; the message is safe to print."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _reject(problem: str) -> EndpointRejected:
    return EndpointRejected(f"{ADDRESS_ENV} {problem}.")


def _check(url: str) -> str:
    if not _VISIBLE_ASCII.fullmatch(url):
        raise _reject("must be a URL of visible ASCII characters, without spaces")
    # A query or fragment has no place in a base URL; "?" or "#" alone is refused too.
    if "?" in url or "#" in url:
        raise _reject("must not contain a query or fragment")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _reject("is not a valid URL") from None
    # Backslashes are read differently by different URL parsers; none belongs here.
    if "\\" in url:
        raise _reject("is not a valid URL")
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise _reject("must be an https:// URL")
    if "@" in parts.netloc:
        raise _reject("must not contain credentials (user:password@)")
    host = parts.hostname or ""
    if not host:
        raise _reject("must name a host")
    is_ip_literal = parts.netloc.startswith("[")
    if is_ip_literal:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise _reject("has an invalid IPv6 address") from None
    elif not _HOSTNAME.fullmatch(host):
        raise _reject("has an invalid host name")
    if port == 0 or parts.netloc.endswith(":"):
        raise _reject("has an invalid port")
    if scheme == "http" and not is_loopback(host):
        raise _reject("must be an https:// URL (plain http:// is only allowed to loopback)")
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def resolve_endpoint(env: Mapping[str, str]) -> str:
    """The base URL to submit to, without a trailing slash.

    Raises EndpointRejected when the override is not acceptable.
    """
    override = env.get(ADDRESS_ENV, "")
    return _check(override if override else DEFAULT_ENDPOINT)


def endpoint_host(url: str) -> str:
    """``host[:port]`` of a URL returned by resolve_endpoint, for the job summary."""
    return urlsplit(url).netloc
