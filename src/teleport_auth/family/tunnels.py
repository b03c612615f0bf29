"""The daemon members: ``database-tunnel``, ``application-tunnel`` and ``application-proxy``.

tbot runs in the background (``oneshot: false``) with one service that listens
on ``listen``; the step waits for its diagnostics service to report ready
(``teleport_auth.daemon``). The inputs they share with each other are here.
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from teleport_auth.daemon import DEFAULT_TIMEOUT_MS
from teleport_auth.family.spec import (
    BackgroundSettings,
    InputSpec,
    Member,
    OutputSpec,
    Published,
    Requirement,
)
from teleport_auth.inputs import (
    InputError,
    Inputs,
    is_loopback,
    raw_input,
    shown,
    validate_resource_name,
)
from teleport_auth.listener import reached_on_loopback
from teleport_auth.record import Record

if TYPE_CHECKING:
    from teleport_auth.tbot_schema import Output, Service

# The originals' defaults.
DEFAULT_DIAG_PORT = 57263
# The longest wait accepted: 2^31 - 1 ms (about 24.8 days, beyond any job's
# limit). Anything longer is a mistake, and refused before tbot starts.
MAX_TIMEOUT_MS = 2**31 - 1
# The services these members configure appeared in tbot 18.6.4 (as the originals require).
MIN_TBOT = (18, 6, 4)
# JavaScript's parseInt: optional sign and leading digits after leading whitespace.
_JS_INT = re.compile(r"\s*([+-]?)([0-9]+)")


class Tunnel(Record):
    """The inputs every daemon member has."""

    __slots__ = ("diag_port", "host", "listen", "port", "timeout_ms", "warnings")

    def __init__(  # noqa: PLR0917 - the tunnel inputs, each named at the one call
        self,
        listen: str,
        host: str,
        port: int,
        timeout_ms: int,
        diag_port: int,
        warnings: tuple[str, ...] = (),
    ) -> None:
        self.listen = listen
        self.host = host
        self.port = port
        self.timeout_ms = timeout_ms
        self.diag_port = diag_port
        self.warnings = warnings

    @property
    def settings(self) -> BackgroundSettings:
        return BackgroundSettings(diag_port=self.diag_port, timeout_ms=self.timeout_ms)


def _js_int(
    name: str, value: str, default: int, *, low: int, high: int, expected: str
) -> tuple[int, str]:
    """The original's parseOptionalInt (parseInt, NaN -> default), saying when it guessed.

    The number must lie in [low, high], else the input error says it must be
    ``expected``. Digits are counted before they are converted: a number of
    thousands of digits is refused for its size, never converted.
    """
    if not value.strip():
        return default, ""
    match = _JS_INT.match(value)
    if match is None:
        return default, (
            f"Input '{name}' is not a number (got {shown(value.strip())}); using the default "
            f"{default}, as the original action does."
        )
    sign, digits = match.group(1), match.group(2).lstrip("0") or "0"
    number = None if len(digits) > len(str(high)) else int(sign + digits)
    if number is None or not low <= number <= high:
        raise InputError(f"Input '{name}' must be {expected}; got {shown(value.strip())}.")
    if value[match.end() :].strip():
        return number, (
            f"Input '{name}' has trailing text (got {shown(value.strip())}); using {number}, "
            "as the original action does."
        )
    return number, ""


# One getaddrinfo result: (family, type, proto, canonname, sockaddr).
_AddrInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, Any]

# Errors that say the probe cannot tell (no IPv6 here, say), not that the port is taken.
_CANNOT_TELL = frozenset({errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT})


def _go_listen_address(host: str, port: int) -> _AddrInfo | None:
    """What Go's net.Listen binds for host:port: the first address, IPv4 first.

    None when the name does not resolve here.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError):
        return None
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    return infos[0] if infos else None


def binds_diag_address(host: str, port: int) -> bool:
    """Whether tbot's listener on host:port needs what its diagnostics service holds.

    tbot serves diagnostics on 127.0.0.1:<diag-port>. On the same port a
    listener clashes with it when it binds 127.0.0.1 itself or a wildcard
    (0.0.0.0, or ::, which Go opens for IPv4 too); ::1 or 127.0.0.2 do not.
    """
    found = _go_listen_address(host, port)
    if found is None:
        return False  # not resolvable here: tbot will say so itself
    return reached_on_loopback(ipaddress.ip_address(str(found[4][0]).split("%", 1)[0]))


def port_is_free(host: str, port: int) -> bool:
    """Whether a listener could bind host:port now, as tbot's would.

    Go's net.Listen binds the first address the name resolves to, IPv4 first,
    with SO_REUSEADDR: so does the probe. Only "address in use" (or a refusal
    to bind) counts as taken; anything this host cannot tell is left to tbot.
    """
    found = _go_listen_address(host, port)
    if found is None:
        return True  # not resolvable here: tbot will say so itself
    family, kind, proto, _, address = found
    try:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        return exc.errno in _CANNOT_TELL
    return True


def _listen(value: str) -> tuple[str, str, int]:
    text = value.strip()
    expected = "a URI such as tcp://127.0.0.1:5432"
    if not text:
        raise InputError(f"Input 'listen' is required: {expected}.")
    if any(not c.isprintable() or c.isspace() for c in text):
        raise InputError(f"Input 'listen' must be {expected}, without spaces.")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise InputError(
            f"Input 'listen' must be {expected} with a port from 1 to 65535."
        ) from None
    if parts.scheme.lower() != "tcp":
        raise InputError(f"Input 'listen' must be a tcp:// URI: {expected}.")
    if port is None or not 1 <= port <= 65535:
        raise InputError(f"Input 'listen' needs a port from 1 to 65535: {expected}.")
    host = parts.hostname or ""
    if not host:
        raise InputError(f"Input 'listen' must name a host: {expected}.")
    return text, host, port


def read_tunnel(env: Mapping[str, str]) -> Tunnel:
    listen, host, port = _listen(raw_input(env, "listen"))
    warnings: list[str] = []
    if not is_loopback(host):
        warnings.append(
            f"Input 'listen' binds {host}, not a loopback address: the tunnel can be reached "
            "from beyond this runner. Use tcp://127.0.0.1:<port> unless that is intended."
        )
    timeout_ms, warning = _js_int(
        "timeout-ms",
        raw_input(env, "timeout-ms"),
        DEFAULT_TIMEOUT_MS,
        low=0,
        high=MAX_TIMEOUT_MS,
        expected=f"a number of milliseconds from 0 (no wait) to {MAX_TIMEOUT_MS} (24.8 days)",
    )
    if warning:
        warnings.append(warning)
    diag_port, warning = _js_int(
        "diag-port",
        raw_input(env, "diag-port"),
        DEFAULT_DIAG_PORT,
        low=1,
        high=65535,
        expected="a port from 1 to 65535",
    )
    if warning:
        warnings.append(warning)
    if diag_port == port and binds_diag_address(host, port):
        raise InputError("Inputs 'diag-port' and 'listen' must use different ports.")
    if not port_is_free(host, port):
        raise InputError(
            f"Input 'listen': port {port} on {host} is already in use; choose a free port."
        )
    if not port_is_free("127.0.0.1", diag_port):
        raise InputError(
            f"Input 'diag-port': port {diag_port} on 127.0.0.1 is already in use; "
            "choose a free port for tbot's diagnostics service."
        )
    return Tunnel(listen, host, port, timeout_ms, diag_port, tuple(warnings))


TUNNEL_INPUTS = (
    InputSpec(
        "listen",
        "Where the local tunnel listens, as a URI with a port, e.g. tcp://127.0.0.1:5432. "
        "A host other than a loopback address or localhost is accepted with a warning: the "
        "tunnel is then reachable from beyond the runner.",
        required=True,
    ),
    InputSpec(
        "timeout-ms",
        "How long to wait, in milliseconds, for the tunnel to become ready. 0 skips the wait "
        "(with a warning).",
        default=str(DEFAULT_TIMEOUT_MS),
    ),
    InputSpec(
        "diag-port",
        "Port of tbot's diagnostics service on 127.0.0.1, used to wait for readiness.",
        default=str(DEFAULT_DIAG_PORT),
    ),
)


def daemon_outputs(prefix: str, what: str) -> tuple[OutputSpec, ...]:
    return (
        OutputSpec(f"{prefix}-uri", f"The URI the {what} listens on (the listen input)."),
        OutputSpec(f"{prefix}-port", f"The port the {what} listens on."),
        OutputSpec(
            "diag-addr",
            "Address of tbot's diagnostics service (127.0.0.1:<diag-port>); set also when tbot "
            "fails to become ready.",
        ),
        OutputSpec(
            "log-path",
            "Path of tbot's log file (mode 0600, private to the job's user); set also when "
            "tbot fails to become ready. The log is shown when the job ends.",
        ),
        OutputSpec(
            "tbot-pid",
            "Process id of the background tbot, to stop it (kill <pid>) before the job ends "
            "(it is stopped when the job ends).",
        ),
    )


class TunnelPlan:
    """What every daemon member's plan shares: a tunnel, run in the background."""

    __slots__ = ("tunnel",)
    # Its outputs' prefix (``<prefix>-uri``, ``<prefix>-port``).
    prefix = ""

    def __init__(self, tunnel: Tunnel) -> None:
        self.tunnel = tunnel

    def outputs(self, destination: Path) -> list[Output]:
        return []

    def requirements(self) -> tuple[Requirement, ...]:
        return ()

    def warnings(self) -> tuple[str, ...]:
        return self.tunnel.warnings

    def background(self) -> BackgroundSettings:
        return self.tunnel.settings

    def published(self, *rows: tuple[str, str]) -> Published:
        """The member's own outputs; the step adds diag-addr, log-path and tbot-pid."""
        return Published(
            outputs={
                f"{self.prefix}-uri": self.tunnel.listen,
                f"{self.prefix}-port": str(self.tunnel.port),
            },
            rows=(*rows, ("Listening on", self.tunnel.listen)),
        )


# --- database-tunnel -----------------------------------------------------------------


class Database(TunnelPlan):
    __slots__ = ("database", "service", "username")
    prefix = "database-tunnel"

    def __init__(self, tunnel: Tunnel, service: str, database: str, username: str) -> None:
        super().__init__(tunnel)
        self.service = service
        self.database = database
        self.username = username

    def services(self) -> list[Service]:
        return [
            {
                "type": "database-tunnel",
                "listen": self.tunnel.listen,
                "roles": [],
                "service": self.service,
                "database": self.database,
                "username": self.username,
            }
        ]

    def publish(self, inputs: Inputs, destination: Path) -> Published:
        return self.published(("Database", self.service))


def _read_database(env: Mapping[str, str]) -> Database:
    # tbot refuses a database tunnel without any of the three (its CheckAndSetDefaults);
    # the original passes empty ones on and tbot fails: we say so before it starts.
    return Database(
        tunnel=read_tunnel(env),
        service=validate_resource_name(
            "service", raw_input(env, "service"), "the name of the database in Teleport"
        ),
        database=validate_resource_name(
            "database",
            raw_input(env, "database"),
            "the database to connect to within that service (tbot needs it)",
        ),
        username=validate_resource_name(
            "username",
            raw_input(env, "username"),
            "the database user to connect as (tbot needs it)",
        ),
    )


DATABASE_TUNNEL = Member(
    key="database-tunnel",
    folder="database-tunnel",
    original="teleport-actions/database-tunnel",
    title="Teleport Database Tunnel",
    description=(
        "Open a local tunnel, for the rest of the job, to a database behind Teleport, with "
        "Machine ID (tbot) running in the background."
    ),
    inputs=(
        *TUNNEL_INPUTS,
        InputSpec(
            "service", "Name of the database in Teleport (its resource name).", required=True
        ),
        InputSpec(
            "database",
            "Name of the database within that database service to connect to (tbot needs it).",
            required=True,
        ),
        InputSpec("username", "Database user to connect as (tbot needs it).", required=True),
    ),
    outputs=daemon_outputs("database-tunnel", "tunnel"),
    exports=(),
    min_tbot=MIN_TBOT,
    read=_read_database,
    daemon=True,
)


# --- application-tunnel --------------------------------------------------------------


class App(TunnelPlan):
    __slots__ = ("app",)
    prefix = "application-tunnel"

    def __init__(self, tunnel: Tunnel, app: str) -> None:
        super().__init__(tunnel)
        self.app = app

    def services(self) -> list[Service]:
        return [
            {
                "type": "application-tunnel",
                "listen": self.tunnel.listen,
                "roles": [],
                "app_name": self.app,
            }
        ]

    def publish(self, inputs: Inputs, destination: Path) -> Published:
        return self.published(("Application", self.app))


def _read_app(env: Mapping[str, str]) -> App:
    return App(
        tunnel=read_tunnel(env),
        app=validate_resource_name(
            "app", raw_input(env, "app"), "the name of the application in Teleport"
        ),
    )


APPLICATION_TUNNEL = Member(
    key="application-tunnel",
    folder="application-tunnel",
    original="teleport-actions/application-tunnel",
    title="Teleport Application Tunnel",
    description=(
        "Open a local tunnel, for the rest of the job, to a TCP or HTTP application behind "
        "Teleport, with Machine ID (tbot) running in the background."
    ),
    inputs=(
        InputSpec("app", "Name of the application in Teleport to tunnel to.", required=True),
        *TUNNEL_INPUTS,
    ),
    outputs=daemon_outputs("application-tunnel", "tunnel"),
    exports=(),
    min_tbot=MIN_TBOT,
    read=_read_app,
    daemon=True,
)


# --- application-proxy ---------------------------------------------------------------


class Proxy(TunnelPlan):
    __slots__ = ()
    prefix = "application-proxy"

    def services(self) -> list[Service]:
        # App proxies take no roles and no app name (as the original writes it).
        return [{"type": "application-proxy", "listen": self.tunnel.listen}]

    def publish(self, inputs: Inputs, destination: Path) -> Published:
        return self.published()


APPLICATION_PROXY = Member(
    key="application-proxy",
    folder="application-proxy",
    original="teleport-actions/application-proxy",
    title="Teleport Application Proxy",
    description=(
        "Open a local HTTP proxy, for the rest of the job, to the HTTP applications behind "
        "Teleport, with Machine ID (tbot) running in the background."
    ),
    inputs=TUNNEL_INPUTS,
    outputs=daemon_outputs("application-proxy", "proxy"),
    exports=(),
    min_tbot=MIN_TBOT,
    read=lambda env: Proxy(read_tunnel(env)),
    daemon=True,
)
