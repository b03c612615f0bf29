"""Decoding and checking a ``version: v2`` config as tbot does.

Like tbot, unknown keys are an error at the top level (and in ``onboarding``,
decoded in the same strict pass) but ignored inside outputs, services and
destinations, whose decoders are lenient; known keys are type-checked everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping

from .console import fail
from .yamlload import YamlMap, YamlSeq, tag

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

# Field kinds a known key is checked against.
STR, STRS, BOOL, DURATION, MAP, SEQ = "str", "strs", "bool", "duration", "map", "seq"
Schema = Mapping[str, str]

# Keys every output and service may carry (newer tbot names each one and lets it
# override the credential lifetime).
_COMMON: Schema = {
    "type": STR,
    "name": STR,
    "credential_ttl": DURATION,
    "renewal_interval": DURATION,
}
_OUTPUT: Schema = {**_COMMON, "roles": STRS}  # "destination" is decoded on its own
OUTPUT_SCHEMAS: dict[str, Schema] = {
    "identity": {**_OUTPUT, "cluster": STR, "ssh_config": STR, "allow_reissue": BOOL},
    "application": {**_OUTPUT, "app_name": STR, "specific_tls_naming": BOOL},
    "database": {**_OUTPUT, "service": STR, "database": STR, "username": STR, "format": STR},
    "kubernetes": {**_OUTPUT, "kubernetes_cluster": STR, "disable_exec_plugin": BOOL},
    "ssh_host": {**_OUTPUT, "principals": STRS},
    "spiffe-svid": {**_OUTPUT, "svid": MAP, "include_federated_trust_bundle": BOOL, "jwts": SEQ},
}
# Services the daemon runs: each listens on ``listen`` and relays connections.
TUNNEL_SCHEMAS: dict[str, Schema] = {
    "database-tunnel": {
        **_COMMON,
        "listen": STR,
        "roles": STRS,
        "service": STR,
        "database": STR,
        "username": STR,
    },
    "application-tunnel": {**_COMMON, "listen": STR, "roles": STRS, "app_name": STR},
    "application-proxy": {**_COMMON, "listen": STR},
}
# Services tbot knows that the stand-in accepts but does not simulate.
OTHER_SERVICE_TYPES = (
    "example",
    "kubernetes",
    "spiffe-workload-api",
    "ssh-multiplexer",
    "workload-identity-api",
    "workload-identity-jwt",
    "workload-identity-x509",
)
# Required keys of the tunnels, in tbot's order of checking.
_TUNNEL_REQUIRED = {
    "database-tunnel": ("listen", "service", "database", "username"),
    "application-tunnel": ("listen", "app_name"),
    "application-proxy": ("listen",),
}
DESTINATION_SCHEMAS: dict[str, Schema] = {
    "directory": {"type": STR, "path": STR, "symlinks": STR, "acls": STR},
    "memory": {"type": STR},
    "kubernetes_secret": {"type": STR, "name": STR},
}
STORAGE_TYPES = ("directory", "memory")
SYMLINK_MODES = ("secure", "try-secure", "insecure")
ACL_MODES = ("off", "try", "required")
SSH_CONFIG_MODES = ("on", "off")

_CA_PIN = re.compile(r"sha256:[0-9a-fA-F]{64}\Z")
# Go's time.ParseDuration: a bare (signed) 0, or one or more <number><unit>.
_DURATION = re.compile(r"[-+]?(?:0|(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+)\Z")
# yaml.v3 still decodes these YAML 1.1 words into bool fields.
_YAML11_BOOLS = {
    **dict.fromkeys(("y", "Y", "yes", "Yes", "YES", "on", "On", "ON"), True),
    **dict.fromkeys(("n", "N", "no", "No", "NO", "off", "Off", "OFF"), False),
}
_GO_TYPES = {
    STR: "string",
    STRS: "[]string",
    BOOL: "bool",
    DURATION: "time.Duration",
    MAP: "map",
    SEQ: "[]",
}


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
        self.kubernetes_cluster = ""
        self.disable_exec_plugin = False
        self.app_name = ""
        self.specific_tls_naming = False


class Service:
    def __init__(self, kind: str, name: str, listen: str) -> None:
        self.kind = kind
        self.name = name
        self.listen = listen

    @property
    def is_tunnel(self) -> bool:
        return self.kind in TUNNEL_SCHEMAS


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
        self.services: list[Service] = []
        self.debug = False
        self.oneshot = False
        self.fips = False
        self.diag_addr = ""
        self.certificate_ttl = ""

    @property
    def address(self) -> str:
        return self.proxy_server or self.auth_server


class Decoder:
    """Collects type errors across the document, as yaml.v3 reports them all at once."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, line: int, message: str) -> None:
        self.errors.append(f"line {line}: {message}")

    def raise_errors(self) -> None:
        if self.errors:
            fail("failed parsing config file: yaml: unmarshal errors:  " + "  ".join(self.errors))

    def fields(self, node: YamlMap, allowed: Collection[str], type_name: str) -> None:
        """Strict decoding: every key must be known."""
        for key in node:
            if key not in allowed:
                self.error(node.lines[key], f"field {key} not found in type {type_name}")

    def known(self, node: YamlMap, schema: Schema) -> None:
        """Lenient decoding: type-check the known keys, ignore the others."""
        for key, kind in schema.items():
            if key not in node:
                continue
            if kind == STR:
                self.string(node, key)
            elif kind == STRS:
                self.strings(node, key)
            elif kind == BOOL:
                self.boolean(node, key)
            elif kind == DURATION:
                self.duration(node, key)
            elif kind == MAP:
                self.mapping(node, key, _GO_TYPES[kind])
            else:
                self.sequence(node, key, _GO_TYPES[kind])

    def mapping(self, node: YamlMap, key: str, type_name: str) -> YamlMap | None:
        value = node.get(key)
        if value is None or isinstance(value, YamlMap):
            return value
        self.error(node.lines[key], f"cannot unmarshal {tag(value)} into {type_name}")
        return None

    def sequence(self, node: YamlMap, key: str, type_name: str) -> YamlSeq | None:
        value = node.get(key)
        if value is None or isinstance(value, YamlSeq):
            return value
        self.error(node.lines[key], f"cannot unmarshal {tag(value)} into {type_name}")
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
                self.error(node.lines[key], f"cannot unmarshal {tag(value)} into string")
                return ""

    def strings(self, node: YamlMap, key: str) -> list[str]:
        items = self.sequence(node, key, "[]string")
        if items is None:
            return []
        out: list[str] = []
        for line, item in zip(items.lines, items, strict=True):
            if isinstance(item, (dict, list)):
                self.error(line, f"cannot unmarshal {tag(item)} into string")
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
        self.error(node.lines[key], f"cannot unmarshal {tag(value)} into bool")
        return False

    def duration(self, node: YamlMap, key: str) -> None:
        value = node.get(key)
        if value is None or (isinstance(value, str) and _DURATION.match(value)):
            return
        # yaml.v3 refuses plain numbers for a time.Duration, too.
        self.error(node.lines[key], f"cannot unmarshal {tag(value)} into time.Duration")


def decode_destination(dec: Decoder, node: YamlMap, key: str, owner: str) -> Destination | None:
    value = dec.mapping(node, key, "config.Destination")
    if value is None:
        return None
    kind = dec.string(value, "type")
    if kind not in DESTINATION_SCHEMAS or (owner == "storage" and kind not in STORAGE_TYPES):
        fail(f"unrecognized destination type ({kind})")
    dec.known(value, DESTINATION_SCHEMAS[kind])
    dec.raise_errors()  # each polymorphic part is decoded, then checked, on its own
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
    ttl = raw.get("certificate_ttl")
    cfg.certificate_ttl = ttl if isinstance(ttl, str) else ""
    dec.duration(raw, "renewal_interval")
    cfg.oneshot = dec.boolean(raw, "oneshot")
    cfg.debug = dec.boolean(raw, "debug")
    cfg.fips = dec.boolean(raw, "fips")
    cfg.diag_addr = dec.string(raw, "diag_addr")

    onboarding = dec.mapping(raw, "onboarding", "config.OnboardingConfig")
    if onboarding is not None:
        dec.fields(onboarding, ONBOARDING_KEYS, "config.OnboardingConfig")
        cfg.join_method = dec.string(onboarding, "join_method")
        cfg.token = dec.string(onboarding, "token")
        cfg.ca_pins = dec.strings(onboarding, "ca_pins")
        cfg.ca_path = dec.string(onboarding, "ca_path")

    outputs = dec.sequence(raw, "outputs", "config.Outputs")
    services = dec.sequence(raw, "services", "config.ServiceConfigs")
    dec.raise_errors()

    # Polymorphic parts: like tbot, the first bad one stops the decoding.
    if "storage" in raw:
        storage = decode_destination(dec, raw, "storage", "storage")
        if storage is not None:
            cfg.storage = storage
    for line, item in zip(outputs.lines, outputs, strict=True) if outputs else ():
        cfg.outputs.append(decode_output(dec, line, item))
    for line, item in zip(services.lines, services, strict=True) if services else ():
        cfg.services.append(decode_service(dec, line, item, len(cfg.services)))
    dec.raise_errors()

    check_config(cfg, env)
    return cfg


def decode_output(dec: Decoder, line: int, item: object) -> Output:
    if not isinstance(item, YamlMap):
        dec.error(line, f"cannot unmarshal {tag(item)} into config.Output")
        return Output("invalid", Destination("memory"))
    kind = dec.string(item, "type")
    if kind not in OUTPUT_SCHEMAS:
        fail(f"unrecognized output type ({kind})")
    dec.known(item, OUTPUT_SCHEMAS[kind])
    dec.raise_errors()
    destination = decode_destination(dec, item, "destination", f"{kind} output")
    if destination is None:
        fail("no destination configured for output")
    out = Output(kind, destination)
    if kind == "identity":
        out.cluster = dec.string(item, "cluster")
        out.ssh_config = dec.string(item, "ssh_config") or "on"
        if out.ssh_config not in SSH_CONFIG_MODES:
            fail(f'unrecognized ssh_config mode: "{out.ssh_config}"')
    elif kind == "kubernetes":
        out.kubernetes_cluster = dec.string(item, "kubernetes_cluster")
        out.disable_exec_plugin = dec.boolean(item, "disable_exec_plugin")
        if not out.kubernetes_cluster:
            fail("kubernetes_cluster must not be empty")
    elif kind == "application":
        out.app_name = dec.string(item, "app_name")
        out.specific_tls_naming = dec.boolean(item, "specific_tls_naming")
        if not out.app_name:
            fail("app_name must not be empty")
    elif kind == "database" and not dec.string(item, "service"):
        fail("service must not be empty")
    return out


def decode_service(dec: Decoder, line: int, item: object, index: int) -> Service:
    if not isinstance(item, YamlMap):
        dec.error(line, f"cannot unmarshal {tag(item)} into config.ServiceConfig")
        return Service("invalid", "", "")
    kind = dec.string(item, "type")
    if kind in TUNNEL_SCHEMAS:
        dec.known(item, TUNNEL_SCHEMAS[kind])
    elif kind in OTHER_SERVICE_TYPES:
        dec.known(item, _COMMON)
    else:
        fail(f"unrecognized service type ({kind})")
    dec.raise_errors()
    # tbot names unnamed services itself; readyz reports them under that name.
    name = dec.string(item, "name") or f"{kind}-{index + 1}"
    for key in _TUNNEL_REQUIRED.get(kind, ()):
        if not dec.string(item, key):
            fail(f"validating service[{index}]: {key}: should not be empty")
    return Service(kind, name, dec.string(item, "listen"))


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
