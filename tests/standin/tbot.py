#!/usr/bin/env python3
"""A stand-in for Teleport's ``tbot`` binary.

The real binary cannot be downloaded where the tests, the ``act`` runs, the demo
and the benchmark run, so this script imitates it wherever the action can
observe it: the ``tbot version`` line, how ``tbot start -c PATH`` validates a
``version: v2`` config and fails (one ``ERROR: <message>`` line on stderr, exit
1), the files an identity output writes, and tbot's own anonymous telemetry.

It joins nothing: certificates and keys are random bytes shaped like PEM and
OpenSSH text. ``oneshot: false`` is accepted but behaves like ``oneshot: true``
(renews once and exits) so that a test can never hang on a daemon. Only
identity outputs with a directory destination produce files; the storage
directory is left alone. Unlike real tbot (whose nested decoders do not reject
unknown fields), unknown keys are rejected at every level so that a typo in a
generated config fails a test instead of being ignored.

Knobs, all read from the environment:

``STANDIN_TBOT_VERSION``
    Version ``tbot version`` prints and telemetry reports (default 16.4.2).
``STANDIN_TBOT_EDITION``
    ``enterprise`` prints ``Teleport Enterprise v...``.
``STANDIN_TBOT_DELAY``
    Seconds (float) to sleep before writing the outputs, like a slow join.
``STANDIN_TBOT_FAIL``
    After a valid config, fail with ``ERROR: <value>`` instead of writing.
``STANDIN_TBOT_EXIT_CODE``
    Exit code for ``STANDIN_TBOT_FAIL`` (default 1).
``STANDIN_TBOT_RECORD``
    Path of a JSON-lines file; every invocation appends ``{"argv": [args
    without the program name], "env": {...}, "env_keys": [...], "config": ...,
    "reported": bool}``. ``config`` is the parsed config as is (token included:
    the record is a test artifact and tests check what the action passed).
"""

from __future__ import annotations

import base64
import json
import os
import re
import sys
import threading
import time
from collections.abc import Collection, Iterator, Mapping
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    import urllib.request

# Modules only some runs need are imported where they are used: every test, act
# run and benchmark iteration starts this script, and start-up time adds up.

_REPO = Path(__file__).resolve().parents[2]
# The generated prehog module lives in the action's source tree.
if str(_REPO / "src") not in sys.path:
    sys.path.insert(0, str(_REPO / "src"))

# A bare python3 (an act run, the demo) may lack PyYAML or protobuf: fall back on the
# action's bundle, after the interpreter's own packages.
if (_REPO / "_vendor").is_dir():
    sys.path.append(str(_REPO / "_vendor"))

import yaml  # noqa: E402 - needs the paths above

DEFAULT_VERSION = "16.4.2"
DEFAULT_REPORTING_URL = "https://reporting-tbot.teleportinfra.sh"
SUBMIT_PATH = "/prehog.v1alpha.TbotReportingService/SubmitTbotEvent"
TELEMETRY_DOCS = "https://goteleport.com/docs/reference/machine-id/telemetry/"
# Real tbot waits this long for the telemetry request before it exits.
TELEMETRY_WAIT_SECONDS = 10.0

RECORDED_ENV = (
    "TELEPORT_ANONYMOUS_TELEMETRY",
    "TELEPORT_ANONYMOUS_TELEMETRY_ADDRESS",
    "_TBOT_TELEMETRY_HELPER",
    "_TBOT_TELEMETRY_HELPER_VERSION",
    "TELEPORT_PROXY",
    "TELEPORT_AUTH_SERVER",
)

TOP_LEVEL_KEYS = (
    "version",
    "onboarding",
    "storage",
    "outputs",
    "services",
    "debug",
    "auth_server",
    "proxy_server",
    "certificate_ttl",
    "renewal_interval",
    "oneshot",
    "fips",
    "diag_addr",
)
ONBOARDING_KEYS = ("join_method", "token", "ca_pins", "ca_path")
JOIN_METHODS = (
    "token",
    "iam",
    "ec2",
    "gcp",
    "github",
    "gitlab",
    "circleci",
    "kubernetes",
    "azure",
    "spacelift",
    "tpm",
    "terraform_cloud",
    "bitbucket",
    "azure_devops",
    "oracle",
    "bound_keypair",
)
# Output type -> (Go type named in errors, allowed keys).
OUTPUT_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "identity": (
        "config.IdentityOutput",
        ("type", "destination", "roles", "cluster", "ssh_config", "allow_reissue"),
    ),
    "application": (
        "config.ApplicationOutput",
        ("type", "destination", "roles", "app_name", "specific_tls_naming"),
    ),
    "database": (
        "config.DatabaseOutput",
        ("type", "destination", "roles", "service", "database", "username", "format"),
    ),
    "kubernetes": (
        "config.KubernetesOutput",
        ("type", "destination", "roles", "kubernetes_cluster", "disable_exec_plugin"),
    ),
    "ssh_host": ("config.SSHHostOutput", ("type", "destination", "roles", "principals")),
    "spiffe-svid": (
        "config.SPIFFESVIDOutput",
        ("type", "destination", "roles", "svid", "include_federated_trust_bundle", "jwts"),
    ),
}
SERVICE_TYPES = (
    "application-tunnel",
    "database-tunnel",
    "example",
    "kubernetes",
    "spiffe-workload-api",
    "ssh-multiplexer",
    "workload-identity-api",
    "workload-identity-jwt",
    "workload-identity-x509",
)
# Destination type -> (Go type named in errors, allowed keys).
DESTINATION_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "directory": ("config.DestinationDirectory", ("type", "path", "symlinks", "acls")),
    "memory": ("config.DestinationMemory", ("type",)),
    "kubernetes_secret": ("config.DestinationKubernetesSecret", ("type", "name")),
}
STORAGE_TYPES = ("directory", "memory")
SYMLINK_MODES = ("secure", "try-secure", "insecure")
ACL_MODES = ("off", "try", "required")
SSH_CONFIG_MODES = ("on", "off")

IDENTITY_FILES = (
    "identity",
    "key",
    "key.pub",
    "key-cert.pub",
    "tlscert",
    "teleport-host-ca.crt",
    "teleport-user-ca.crt",
    "teleport-database-ca.crt",
)
SSH_CONFIG_FILES = ("known_hosts", "ssh_config")

_CA_PIN = re.compile(r"sha256:[0-9a-fA-F]{64}\Z")
# Go's time.ParseDuration: a bare (signed) 0, or one or more <number><unit>.
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,
    "\u03bcs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_DURATION = re.compile(r"[-+]?(?:0|(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+)\Z")
# Go strconv.ParseBool; any other text leaves telemetry off.
_PARSE_BOOL = {
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}
# yaml.v3 still decodes these YAML 1.1 words into bool fields.
_YAML11_BOOLS = {
    **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "on", "On", "ON"), True),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "off", "Off", "OFF"), False),
}


class ConfigError(Exception):
    """A failure tbot reports as one ``ERROR: <message>`` line before exiting 1."""


def fail(message: str) -> NoReturn:
    raise ConfigError(message)


# --- logging ---------------------------------------------------------------

_log_lock = threading.Lock()


def _field(value: object) -> str:
    text = str(value)
    return json.dumps(text) if not text or any(c.isspace() for c in text) else text


class Logger:
    def __init__(self, debug_enabled: bool = False) -> None:
        self.debug_enabled = debug_enabled

    def _emit(self, level: str, component: str, message: str, where: str, **fields: object) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        extra = "".join(f" {key}:{_field(value)}" for key, value in fields.items())
        line = f"{stamp} {level} {f'[{component}]':<11} {message}{extra} {where}\n"
        # Telemetry logs from its own thread: keep lines whole.
        with _log_lock:
            sys.stderr.write(line)
            sys.stderr.flush()

    def debug(self, component: str, message: str, where: str, **fields: object) -> None:
        if self.debug_enabled:
            self._emit("DEBU", component, message, where, **fields)

    def info(self, component: str, message: str, where: str, **fields: object) -> None:
        self._emit("INFO", component, message, where, **fields)

    def warn(self, component: str, message: str, where: str, **fields: object) -> None:
        self._emit("WARN", component, message, where, **fields)


# --- YAML loading ------------------------------------------------------------


class YamlMap(dict[str, Any]):
    """A mapping that remembers each key's line, for yaml.v3-style messages."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: dict[str, int] = {}


class YamlSeq(list[Any]):
    """A sequence that remembers each item's line."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[int] = []


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans, as in Go's yaml.v3: ``on``/``yes`` stay strings."""


_BOOL_TAG = "tag:yaml.org,2002:bool"
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _scalar_key(loader: _Loader, node: yaml.Node) -> str:
    key = loader.construct_object(node, deep=True)
    if isinstance(key, bool):
        return "true" if key else "false"
    return "" if key is None else str(key)


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> YamlMap:
    loader.flatten_mapping(node)
    data = YamlMap()
    for key_node, value_node in node.value:
        key = _scalar_key(loader, key_node)
        line = key_node.start_mark.line + 1
        if key in data.lines:
            fail(
                f"failed parsing config file: yaml: line {line}: mapping key "
                f'"{key}" already defined at line {data.lines[key]}'
            )
        data[key] = loader.construct_object(value_node, deep=True)
        data.lines[key] = line
    return data


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> YamlSeq:
    data = YamlSeq()
    for item in node.value:
        data.append(loader.construct_object(item, deep=True))
        data.lines.append(item.start_mark.line + 1)
    return data


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def load_config(path: str) -> YamlMap:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"failed to open file: {path}: open {path}: {_os_error(exc)}")
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        fail(f"failed parsing config file version: yaml: {' '.join(str(exc).split())}")
    if data is None:
        fail("failed parsing config file version: EOF")
    if not isinstance(data, YamlMap):
        fail(
            "failed parsing config file version: yaml: unmarshal errors:  "
            f"line 1: cannot unmarshal {_tag(data)} into struct {{ Version config.Version }}"
        )
    return data


def _os_error(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()


def _tag(value: object) -> str:
    """yaml.v3 names a value by its tag, and shows scalars too."""
    match value:
        case bool():
            return f"!!bool `{'true' if value else 'false'}`"
        case int():
            return f"!!int `{value}`"
        case float():
            return f"!!float `{value}`"
        case str():
            return f"!!str `{value}`"
        case dict():
            return "!!map"
        case list():
            return "!!seq"
        case datetime() | date():
            return f"!!timestamp `{value}`"
        case None:
            return "!!null"
        case _:
            return f"!!{type(value).__name__}"


# --- config decoding and validation ---------------------------------------------


# Plain classes, not dataclasses: importing dataclasses costs ~10 ms a run.
class Destination:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.path = ""
        self.symlinks = "try-secure"


class Output:
    def __init__(self, kind: str, destination: Destination) -> None:
        self.kind = kind
        self.destination = destination
        self.cluster = ""
        self.ssh_config = "on"


class BotConfig:
    def __init__(self) -> None:
        self.proxy_server = ""
        self.auth_server = ""
        self.join_method = ""
        self.token = ""
        self.ca_pins: list[str] = []
        self.ca_path = ""
        self.storage = Destination("memory")
        self.outputs: list[Output] = []
        self.debug = False
        self.oneshot = False
        self.fips = False


class Decoder:
    """Collects type errors across the document, as yaml.v3 reports them all at once."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, line: int, message: str) -> None:
        self.errors.append(f"line {line}: {message}")

    def fields(self, node: YamlMap, allowed: Collection[str], type_name: str) -> None:
        for key in node:
            if key not in allowed:
                self.error(node.lines[key], f"field {key} not found in type {type_name}")

    def mapping(self, node: YamlMap, key: str, type_name: str) -> YamlMap | None:
        value = node.get(key)
        if value is None or isinstance(value, YamlMap):
            return value
        self.error(node.lines[key], f"cannot unmarshal {_tag(value)} into {type_name}")
        return None

    def sequence(self, node: YamlMap, key: str, type_name: str) -> YamlSeq | None:
        value = node.get(key)
        if value is None or isinstance(value, YamlSeq):
            return value
        self.error(node.lines[key], f"cannot unmarshal {_tag(value)} into {type_name}")
        return None

    def string(self, node: YamlMap, key: str) -> str:
        value = node.get(key)
        match value:
            case None:
                return ""
            case bool():  # yaml.v3 keeps a scalar's text when the field is a string
                return "true" if value else "false"
            case str() | int() | float():
                return str(value)
            case _:
                self.error(node.lines[key], f"cannot unmarshal {_tag(value)} into string")
                return ""

    def strings(self, node: YamlMap, key: str) -> list[str]:
        items = self.sequence(node, key, "[]string")
        if items is None:
            return []
        out: list[str] = []
        for line, item in zip(items.lines, items, strict=True):
            if isinstance(item, (dict, list)):
                self.error(line, f"cannot unmarshal {_tag(item)} into string")
            else:
                out.append("" if item is None else str(item))
        return out

    def boolean(self, node: YamlMap, key: str) -> bool:
        value = node.get(key)
        if value is None:
            return False
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value in _YAML11_BOOLS:
            return _YAML11_BOOLS[value]
        self.error(node.lines[key], f"cannot unmarshal {_tag(value)} into bool")
        return False

    def duration(self, node: YamlMap, key: str) -> float:
        value = node.get(key)
        if value is None:
            return 0.0
        if isinstance(value, str) and _DURATION.match(value):
            return parse_go_duration(value)
        # yaml.v3 refuses plain numbers for a time.Duration, too.
        self.error(node.lines[key], f"cannot unmarshal {_tag(value)} into time.Duration")
        return 0.0


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration string; the caller has checked its syntax."""
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if body == "0":
        return 0.0
    total = sum(float(num) * _DURATION_UNITS[unit] for num, unit in _DURATION_PART.findall(body))
    return sign * total


def decode_destination(dec: Decoder, node: YamlMap, key: str, owner: str) -> Destination | None:
    value = dec.mapping(node, key, "config.Destination")
    if value is None:
        return None
    kind = dec.string(value, "type")
    if kind not in DESTINATION_TYPES or (owner == "storage" and kind not in STORAGE_TYPES):
        fail(f"unrecognized destination type ({kind})")
    type_name, allowed = DESTINATION_TYPES[kind]
    dec.fields(value, allowed, type_name)
    dest = Destination(kind)
    if kind == "directory":
        dest.path = dec.string(value, "path")
        dest.symlinks = dec.string(value, "symlinks") or "try-secure"
        acls = dec.string(value, "acls") or "off"
        if not dest.path:
            fail(f"{owner}: destination path must not be empty")
        if dest.symlinks not in SYMLINK_MODES:
            fail(f'{owner}: unrecognized symlinks mode: "{dest.symlinks}"')
        if acls not in ACL_MODES:
            fail(f'{owner}: unrecognized acls mode: "{acls}"')
    elif kind == "kubernetes_secret" and not dec.string(value, "name"):
        fail(f"{owner}: name must not be empty")
    return dest


def decode_config(raw: YamlMap, env: Mapping[str, str]) -> BotConfig:
    version = raw.get("version")
    if version != "v2":
        shown = "" if version is None else version
        fail(f'unrecognized config version "{shown}" (the tbot stand-in reads only v2)')

    dec = Decoder()
    dec.fields(raw, TOP_LEVEL_KEYS, "config.BotConfig")
    cfg = BotConfig()
    cfg.proxy_server = dec.string(raw, "proxy_server")
    cfg.auth_server = dec.string(raw, "auth_server")
    dec.duration(raw, "certificate_ttl")
    dec.duration(raw, "renewal_interval")
    cfg.oneshot = dec.boolean(raw, "oneshot")
    cfg.debug = dec.boolean(raw, "debug")
    cfg.fips = dec.boolean(raw, "fips")
    dec.string(raw, "diag_addr")

    onboarding = dec.mapping(raw, "onboarding", "config.OnboardingConfig")
    if onboarding is not None:
        dec.fields(onboarding, ONBOARDING_KEYS, "config.OnboardingConfig")
        cfg.join_method = dec.string(onboarding, "join_method")
        cfg.token = dec.string(onboarding, "token")
        cfg.ca_pins = dec.strings(onboarding, "ca_pins")
        cfg.ca_path = dec.string(onboarding, "ca_path")

    outputs = dec.sequence(raw, "outputs", "config.Outputs")
    services = dec.sequence(raw, "services", "config.ServiceConfigs")
    if dec.errors:
        fail("failed parsing config file: yaml: unmarshal errors:  " + "  ".join(dec.errors))

    # Polymorphic parts: like tbot, the first bad one stops the decoding.
    if "storage" in raw:
        storage = decode_destination(dec, raw, "storage", "storage")
        if storage is not None:
            cfg.storage = storage
    for line, item in zip(outputs.lines, outputs, strict=True) if outputs else ():
        cfg.outputs.append(decode_output(dec, line, item))
    for line, item in zip(services.lines, services, strict=True) if services else ():
        kind = dec.string(item, "type") if isinstance(item, YamlMap) else ""
        if not isinstance(item, YamlMap):
            dec.error(line, f"cannot unmarshal {_tag(item)} into config.ServiceConfig")
        elif kind not in SERVICE_TYPES:
            fail(f"unrecognized service type ({kind})")
    if dec.errors:
        fail("failed parsing config file: yaml: unmarshal errors:  " + "  ".join(dec.errors))

    check_config(cfg, env)
    return cfg


def decode_output(dec: Decoder, line: int, item: object) -> Output:
    if not isinstance(item, YamlMap):
        dec.error(line, f"cannot unmarshal {_tag(item)} into config.Output")
        return Output("invalid", Destination("memory"))
    kind = dec.string(item, "type")
    if kind not in OUTPUT_TYPES:
        fail(f"unrecognized output type ({kind})")
    type_name, allowed = OUTPUT_TYPES[kind]
    dec.fields(item, allowed, type_name)
    dec.strings(item, "roles")
    destination = decode_destination(dec, item, "destination", f"{kind} output")
    if destination is None:
        fail("no destination configured for output")
    out = Output(kind, destination)
    if kind == "identity":
        out.cluster = dec.string(item, "cluster")
        out.ssh_config = dec.string(item, "ssh_config") or "on"
        dec.boolean(item, "allow_reissue")
        if out.ssh_config not in SSH_CONFIG_MODES:
            fail(f'unrecognized ssh_config mode: "{out.ssh_config}"')
    return out


def check_config(cfg: BotConfig, env: Mapping[str, str]) -> None:
    """tbot's CheckAndSetDefaults and start-up checks, first failure wins."""
    if cfg.join_method not in JOIN_METHODS:
        fail(f'unrecognized join method: "{cfg.join_method}"')
    if cfg.ca_pins and cfg.ca_path:
        fail("the options ca-pin and ca-path are mutually exclusive")
    for pin in cfg.ca_pins:
        if not _CA_PIN.match(pin):
            fail(f'invalid CA pin "{pin}": expected sha256:<64 hex digits>')
    if cfg.fips:
        fail(
            "FIPS mode enabled but FIPS compatible binary not in use. Ensure you are "
            "using the Enterprise FIPS binary to use this flag."
        )
    # tbot's --proxy-server/--auth-server flags read these variables and override the
    # config; a left-over value and a configured address make tbot refuse to start.
    for env_name in ("TELEPORT_PROXY", "TELEPORT_AUTH_SERVER"):
        if env.get(env_name):
            for key, value in (
                ("proxy_server", cfg.proxy_server),
                ("auth_server", cfg.auth_server),
            ):
                if value:
                    fail(
                        f"{env_name} from the environment clashes with {key} in the config: "
                        "auth_server and proxy_server cannot both be set"
                    )
    if cfg.proxy_server and cfg.auth_server:
        fail("auth_server and proxy_server cannot both be set")
    if not cfg.proxy_server and not cfg.auth_server:
        fail(
            "either a proxy or auth address must be set using --proxy-server, "
            "--auth-server or configuration"
        )
    if not cfg.token:
        fail("unable to join: no token configured (onboarding.token)")


# --- telemetry ---------------------------------------------------------------


class Telemetry:
    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.reported = False


def telemetry_enabled(env: Mapping[str, str]) -> bool:
    return _PARSE_BOOL.get(env.get("TELEPORT_ANONYMOUS_TELEMETRY", ""), False)


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
    if helper := env.get("_TBOT_TELEMETRY_HELPER", ""):
        start.helper = helper
        start.helper_version = env.get("_TBOT_TELEMETRY_HELPER_VERSION", "")
    for out in cfg.outputs:
        if out.kind == "application":
            start.destinations_application += 1
        elif out.kind == "database":
            start.destinations_database += 1
        elif out.kind == "kubernetes":
            start.destinations_kubernetes += 1
        else:
            start.destinations_other += 1
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
    host = urllib.parse.urlsplit(url).hostname or ""
    if host in ("localhost", "127.0.0.1", "::1"):
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
        console.warn(
            "TBOT",
            "Failed to send anonymous telemetry.",
            "tbot/main.go:412",
            error=f"HTTP {exc.code}",
        )
    except (OSError, ValueError) as exc:
        console.warn("TBOT", "Failed to send anonymous telemetry.", "tbot/main.go:412", error=exc)


def start_telemetry(
    cfg: BotConfig, version: str, env: Mapping[str, str], console: Logger
) -> Telemetry:
    state = Telemetry()
    if not telemetry_enabled(env):
        console.info(
            "TBOT",
            "Anonymous telemetry is not enabled. Find out more about Machine ID's "
            f"anonymous telemetry at {TELEMETRY_DOCS}",
            "tbot/anonymous_telemetry.go:83",
        )
        return state
    console.info(
        "TBOT",
        "Anonymous telemetry is enabled. Find out more about Machine ID's "
        f"anonymous telemetry at {TELEMETRY_DOCS}",
        "tbot/anonymous_telemetry.go:86",
    )
    base = env.get("TELEPORT_ANONYMOUS_TELEMETRY_ADDRESS") or DEFAULT_REPORTING_URL
    # A test tool never talks to the real reporting service: loopback only.
    import urllib.parse

    host = urllib.parse.urlsplit(base).hostname or ""
    if host not in ("localhost", "127.0.0.1", "::1"):
        console.warn(
            "TBOT",
            "Failed to send anonymous telemetry.",
            "tbot/main.go:412",
            error="the stand-in reports to loopback addresses only",
        )
        return state
    try:
        body = build_event(cfg, version, env)
    except ImportError as exc:
        console.warn("TBOT", "Failed to send anonymous telemetry.", "tbot/main.go:412", error=exc)
        return state
    # Daemon thread: if the 10 s wait runs out, the process may still exit.
    state.thread = threading.Thread(
        target=submit, args=(base.rstrip("/") + SUBMIT_PATH, body, state, console), daemon=True
    )
    state.thread.start()
    return state


# --- outputs ---------------------------------------------------------------


def _b64_lines(data: bytes) -> str:
    text = base64.b64encode(data).decode("ascii")
    return "\n".join(text[i : i + 64] for i in range(0, len(text), 64))


def fake_pem(label: str, size: int) -> str:
    # A DER SEQUENCE header makes the body start with "MII" like real certificates.
    der = b"\x30\x82" + size.to_bytes(2, "big") + os.urandom(size)
    return f"-----BEGIN {label}-----\n{_b64_lines(der)}\n-----END {label}-----\n"


def _ssh_string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def fake_ssh_blob(algorithm: str, size: int) -> str:
    """OpenSSH wire format: the algorithm name, then an RSA exponent or a cert nonce."""
    blob = _ssh_string(algorithm.encode("ascii"))
    if algorithm == "ssh-rsa":
        blob += _ssh_string(b"\x01\x00\x01") + _ssh_string(b"\x00" + os.urandom(size))
    else:
        blob += _ssh_string(os.urandom(32)) + os.urandom(size)
    return base64.b64encode(blob).decode("ascii")


def render_identity(out: Output, dest: Path, cfg: BotConfig) -> dict[str, str]:
    address = cfg.proxy_server or cfg.auth_server
    cluster = out.cluster or address.rsplit(":", 1)[0]
    key = fake_pem("RSA PRIVATE KEY", 1190)
    public = f"ssh-rsa {fake_ssh_blob('ssh-rsa', 256)}\n"
    cert = f"ssh-rsa-cert-v01@openssh.com {fake_ssh_blob('ssh-rsa-cert-v01@openssh.com', 900)}\n"
    tls = fake_pem("CERTIFICATE", 1100)
    host_ca, user_ca, db_ca = (fake_pem("CERTIFICATE", 900) for _ in range(3))
    host_ca_ssh = f"ssh-rsa {fake_ssh_blob('ssh-rsa', 256)}"
    known_hosts = (
        f"@cert-authority {cluster},*.{cluster} {host_ca_ssh} type=host clustername={cluster}\n"
    )
    files = {
        "identity": key + cert + tls + known_hosts + host_ca + user_ca,
        "key": key,
        "key.pub": public,
        "key-cert.pub": cert,
        "tlscert": tls,
        "teleport-host-ca.crt": host_ca,
        "teleport-user-ca.crt": user_ca,
        "teleport-database-ca.crt": db_ca,
    }
    if out.ssh_config != "off":
        tbot_path = _which("tbot")
        files["known_hosts"] = known_hosts
        files["ssh_config"] = (
            f"# Begin generated Teleport configuration for {address} by tbot\n\n"
            f"# Common flags for all {cluster} hosts\n"
            f"Host *.{cluster} {address.rsplit(':', 1)[0]}\n"
            f'    UserKnownHostsFile "{dest / "known_hosts"}"\n'
            f'    IdentityFile "{dest / "key"}"\n'
            f'    CertificateFile "{dest / "key-cert.pub"}"\n\n'
            f"# Flags for all {cluster} hosts except the proxy\n"
            f"Host *.{cluster} !{address.rsplit(':', 1)[0]}\n"
            "    Port 3022\n"
            f'    ProxyCommand "{tbot_path}" proxy --destination-dir={dest} '
            f"--proxy-server={address} ssh --cluster={cluster}  %r@%h:%p\n\n"
            "# End generated Teleport configuration\n"
        )
    return files


def _which(name: str) -> str:
    """shutil.which without importing shutil (it pulls in bz2 and lzma: ~10 ms)."""
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return os.path.abspath(candidate)
    return name


def ensure_directory(path: Path) -> None:
    """Create missing directories 0700 (tbot's mode); leave existing ones alone."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        directory.mkdir(mode=0o700)
        os.chmod(directory, 0o700)  # the umask must not widen or narrow it


def write_file(path: Path, content: str, symlinks: str) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    if symlinks != "insecure":
        flags |= os.O_NOFOLLOW  # secure modes refuse to write through a symlink
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        fail(f"writing {path}: open {path}: {_os_error(exc)}")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(content)


def write_outputs(cfg: BotConfig, console: Logger) -> None:
    for out in cfg.outputs:
        dest = out.destination
        if out.kind != "identity" or dest.kind != "directory":
            console.info(
                "TBOT:OUTPUTS",
                "Generated output.",
                "tbot/output.go:201",
                output=out.kind,
                destination=dest.kind,
            )
            continue
        directory = Path(dest.path)
        try:
            ensure_directory(directory)
        except OSError as exc:
            fail(f"initializing destination {directory}: {_os_error(exc)}")
        for name, content in render_identity(out, directory, cfg).items():
            write_file(directory / name, content, dest.symlinks)
        console.info(
            "TBOT:OUTPUTS",
            "Generated output.",
            "tbot/output.go:201",
            output="identity",
            destination=f"directory: {directory}",
        )


# --- CLI -----------------------------------------------------------------------

USAGE = """\
usage: tbot [<flags>] <command> [<args> ...]

A stand-in for Teleport's Machine ID agent, tbot.

Commands:
  version            Print the version of your tbot binary.
  start [legacy] -c  Starts the renewal bot, writing certificates to the outputs.

Flags:
  -h, --help         Show context-sensitive help.
  -d, --debug        Verbose logging to stdout.
  -c, --config       Path to a configuration file.
"""


class Invocation:
    def __init__(self) -> None:
        self.command = ""
        self.config_path: str | None = None
        self.debug = False
        self.help = False


def parse_args(args: list[str]) -> Invocation:
    inv = Invocation()
    positional: list[str] = []
    items: Iterator[str] = iter(args)
    for arg in items:
        if arg == "--":
            positional.extend(items)
        elif arg in ("-d", "--debug"):
            inv.debug = True
        elif arg in ("-h", "--help"):
            inv.help = True
        elif arg in ("-c", "--config"):
            value = next(items, None)
            if value is None:
                fail(f"expected argument for flag '{arg}'")
            inv.config_path = value
        elif arg.startswith("--config="):
            inv.config_path = arg.split("=", 1)[1]
        elif arg.startswith("-c") and not arg.startswith("--"):
            inv.config_path = arg[2:]
        elif arg.startswith("-") and arg != "-":
            fail(f"unknown flag '{arg.split('=', 1)[0]}'")
        else:
            positional.append(arg)

    if inv.help or positional[:1] == ["help"]:
        inv.help = True
        return inv
    if not positional:
        fail("expected command but got nothing")
    inv.command = positional[0]
    rest = positional[1:]
    if inv.command == "start" and rest[:1] == ["legacy"]:
        rest = rest[1:]  # v17+: `start legacy` is the explicit form of `start -c`
    elif inv.command not in ("start", "version"):
        fail(f'expected command but got "{inv.command}"')
    if rest:
        fail(f'unexpected argument "{rest[0]}"')
    if inv.command == "version" and inv.config_path is not None:
        fail("unknown flag '--config'")
    return inv


def tbot_version(env: Mapping[str, str]) -> str:
    return env.get("STANDIN_TBOT_VERSION", "").strip().removeprefix("v") or DEFAULT_VERSION


class Run:
    """What one invocation did, for the STANDIN_TBOT_RECORD line."""

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.config: YamlMap | None = None
        self.telemetry = Telemetry()


def start(inv: Invocation, env: Mapping[str, str], run: Run) -> int:
    console = Logger(debug_enabled=inv.debug)
    if inv.config_path is None:
        fail("the tbot stand-in needs a config file: tbot start -c PATH")
    run.config = load_config(inv.config_path)
    cfg = decode_config(run.config, env)
    console.debug_enabled = inv.debug or cfg.debug
    version = tbot_version(env)
    console.debug("TBOT", "Debug logging has been enabled.", "tbot/main.go:356")
    console.info("TBOT", "Initializing tbot", "tbot/tbot.go:244", version=version)

    run.telemetry = start_telemetry(cfg, version, env, console)
    try:
        return join_and_write(cfg, env, console)
    finally:
        if run.telemetry.thread is not None:
            run.telemetry.thread.join(TELEMETRY_WAIT_SECONDS)


def join_and_write(cfg: BotConfig, env: Mapping[str, str], console: Logger) -> int:
    console.info(
        "TBOT:IDENTITY",
        "Initializing bot identity.",
        "tbot/service_bot_identity.go:218",
        join_method=cfg.join_method,
        address=cfg.proxy_server or cfg.auth_server,
    )
    if cfg.join_method == "github":
        # tbot fetches a GitHub OIDC token; jobs without `id-token: write` lack these.
        for name in ("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"):
            if not env.get(name):
                fail(f"{name} environment variable missing")
    delay = env.get("STANDIN_TBOT_DELAY", "")
    if delay:
        try:
            time.sleep(max(0.0, float(delay)))
        except ValueError:
            fail(f"tbot stand-in: STANDIN_TBOT_DELAY is not a number: {delay!r}")
    if message := env.get("STANDIN_TBOT_FAIL", ""):
        code = env.get("STANDIN_TBOT_EXIT_CODE", "1")
        print(f"ERROR: {message}", file=sys.stderr, flush=True)
        return int(code) if code.strip().lstrip("-").isdigit() else 1
    console.info("TBOT:IDENTITY", "Fetched new bot identity.", "tbot/service_bot_identity.go:240")
    write_outputs(cfg, console)
    if not cfg.oneshot:
        # A real daemon would keep renewing; the stand-in must never hang a test.
        console.info(
            "TBOT", "tbot stand-in: daemon mode is not simulated, exiting.", "tbot/tbot.go:310"
        )
    else:
        console.info("TBOT", "One-shot mode completed, exiting.", "tbot/tbot.go:310")
    return 0


def write_record(run: Run, env: Mapping[str, str]) -> None:
    path = env.get("STANDIN_TBOT_RECORD", "")
    if not path:
        return
    record = {
        "argv": run.args,
        "env": {name: env.get(name) for name in RECORDED_ENV},
        "env_keys": sorted(env),
        "config": run.config,
        "reported": run.telemetry.reported,
    }
    line = json.dumps(record, default=str) + "\n"
    # One write on an O_APPEND descriptor keeps concurrent records whole.
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line)
    except OSError as exc:  # a harness problem must be visible, not a traceback
        print(f"WARN tbot stand-in: cannot write {path}: {exc}", file=sys.stderr, flush=True)


def main(args: list[str], env: Mapping[str, str]) -> int:
    run = Run(list(args))
    try:
        inv = parse_args(args)
        if inv.help:
            sys.stdout.write(USAGE)
            return 0
        if inv.command == "version":
            edition = "Enterprise " if env.get("STANDIN_TBOT_EDITION") == "enterprise" else ""
            version = tbot_version(env)
            print(f"Teleport {edition}v{version} git:v{version}-0-g1a2b3c4 go1.22.8")
            return 0
        return start(inv, env, run)
    except ConfigError as exc:
        print(f"ERROR: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        write_record(run, env)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], dict(os.environ)))
