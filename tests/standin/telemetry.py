"""tbot's own anonymous telemetry: one ``tbot.start`` event, sent in the background."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .config import BotConfig
from .console import Logger

if TYPE_CHECKING:
    import urllib.request

DEFAULT_REPORTING_URL = "https://reporting-tbot.teleportinfra.sh"
SUBMIT_PATH = "/prehog.v1alpha.TbotReportingService/SubmitTbotEvent"
TELEMETRY_DOCS = "https://goteleport.com/docs/reference/machine-id/telemetry/"
# Real tbot waits this long for the telemetry request before it exits.
TELEMETRY_WAIT_SECONDS = 10.0
# Go strconv.ParseBool; any other text leaves telemetry off.
_PARSE_BOOL = {
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


class Telemetry:
    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.reported = False

    def wait(self) -> None:
        if self.thread is not None:
            self.thread.join(TELEMETRY_WAIT_SECONDS)


def telemetry_enabled(env: Mapping[str, str]) -> bool:
    return _PARSE_BOOL.get(env.get("TELEPORT_ANONYMOUS_TELEMETRY", ""), False)


def destination_counts(cfg: BotConfig) -> dict[str, int]:
    """tbot's counting: every output is one destination (services are not
    counted); only application, database and kubernetes (v1) outputs have
    their own field."""
    counts = {
        "destinations_other": 0,
        "destinations_database": 0,
        "destinations_kubernetes": 0,
        "destinations_application": 0,
    }
    own_field = ("application", "database", "kubernetes")
    for out in cfg.outputs:
        field = f"destinations_{out.kind}" if out.kind in own_field else "destinations_other"
        counts[field] += 1
    return counts


def build_event(cfg: BotConfig, version: str, env: Mapping[str, str]) -> bytes:
    import uuid

    from google.protobuf import timestamp_pb2

    from teleport_auth._proto.prehog.v1alpha import tbot_pb2

    start = tbot_pb2.TbotStartEvent(
        run_mode=(
            tbot_pb2.TbotStartEvent.RUN_MODE_ONE_SHOT
            if cfg.oneshot
            else tbot_pb2.TbotStartEvent.RUN_MODE_DAEMON
        ),
        version=version,
        join_type=cfg.join_method or "token",
    )
    for field, count in destination_counts(cfg).items():
        setattr(start, field, count)
    if helper := env.get("_TBOT_TELEMETRY_HELPER", ""):
        start.helper = helper
        start.helper_version = env.get("_TBOT_TELEMETRY_HELPER_VERSION", "")
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    request = tbot_pb2.SubmitTbotEventRequest(
        distinct_id=str(uuid.uuid4()), timestamp=stamp, start=start
    )
    return request.SerializeToString()


def _opener(url: str) -> urllib.request.OpenerDirector:
    import urllib.parse
    import urllib.request

    # Go's ProxyFromEnvironment never proxies loopback; urllib would without no_proxy.
    if (urllib.parse.urlsplit(url).hostname or "") in _LOOPBACK:
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener()


def submit(url: str, body: bytes, state: Telemetry, console: Logger) -> None:
    import urllib.error
    import urllib.request

    started = time.monotonic()
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/proto", "Connect-Protocol-Version": "1"},
    )
    try:
        with _opener(url).open(request, timeout=TELEMETRY_WAIT_SECONDS) as response:
            response.read()
        state.reported = True
        console.debug(
            "TBOT",
            "Successfully transmitted anonymous telemetry",
            "tbot/anonymous_telemetry.go:131",
            duration=f"{time.monotonic() - started:.3f}s",
        )
    except urllib.error.HTTPError as exc:
        _failed(console, f"HTTP {exc.code}")
    except (OSError, ValueError) as exc:
        _failed(console, exc)


def _failed(console: Logger, error: object) -> None:
    # tbot logs this at ERROR level; the exit code is unaffected.
    console.error("TBOT", "Failed to send anonymous telemetry.", "tbot/main.go:412", error=error)


def start_telemetry(
    cfg: BotConfig, version: str, env: Mapping[str, str], console: Logger
) -> Telemetry:
    state = Telemetry()
    enabled = telemetry_enabled(env)
    console.info(
        "TBOT",
        f"Anonymous telemetry is {'' if enabled else 'not '}enabled. Find out more about "
        f"Machine ID's anonymous telemetry at {TELEMETRY_DOCS}",
        f"tbot/anonymous_telemetry.go:{86 if enabled else 83}",
    )
    if not enabled:
        return state
    base = env.get("TELEPORT_ANONYMOUS_TELEMETRY_ADDRESS") or DEFAULT_REPORTING_URL
    # A test tool never talks to the real reporting service: loopback only.
    import urllib.parse

    if (urllib.parse.urlsplit(base).hostname or "") not in _LOOPBACK:
        _failed(console, "the stand-in reports to loopback addresses only")
        return state
    try:
        body = build_event(cfg, version, env)
    except ImportError as exc:
        _failed(console, exc)
        return state
    # Daemon thread: if the 10 s wait runs out, the process may still exit.
    state.thread = threading.Thread(
        target=submit, args=(base.rstrip("/") + SUBMIT_PATH, body, state, console), daemon=True
    )
    state.thread.start()
    return state
