"""The stand-in's kubernetes and application outputs, services config, and lenient decoding.

Oracles: the file sets in conftest.py (docs/compatibility.md, tbot: files) and, for the kubeconfig,
the shape kubectl loads (clusters, contexts and users that reference each other,
and credential files that exist).
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import (
    TBOT_APPLICATION_FILES,
    TBOT_IDENTITY_FILES,
    TBOT_KUBECONFIG_FILE,
    TBOT_KUBERNETES_FILES,
    TBOT_SPECIFIC_TLS_FILES,
    TBOT_SSH_FILES,
)
from standin.harness import (
    Collector,
    Config,
    Standin,
    base_config,
    enable_telemetry,
    error_lines,
    mode,
    output_config,
    tunnel_config,
)
from teleport_auth._proto.prehog.v1alpha import tbot_pb2


def is_pem(text: str, label: str) -> bool:
    return text.startswith(f"-----BEGIN {label}-----\nMII") and text.endswith(
        f"-----END {label}-----\n"
    )


# --- files per output type -----------------------------------------------------------

# (id, output type, its own keys, the files tbot writes)
OUTPUT_FILES: list[tuple[str, str, dict[str, Any], frozenset[str]]] = [
    ("identity", "identity", {}, TBOT_IDENTITY_FILES | TBOT_SSH_FILES),
    ("identity-ssh-off", "identity", {"ssh_config": "off"}, TBOT_IDENTITY_FILES),
    ("kubernetes", "kubernetes", {"kubernetes_cluster": "k1"}, TBOT_KUBERNETES_FILES),
    (
        "kubernetes-no-exec-plugin",
        "kubernetes",
        {"kubernetes_cluster": "k1", "disable_exec_plugin": True},
        TBOT_KUBERNETES_FILES,
    ),
    ("application", "application", {"app_name": "grafana"}, TBOT_APPLICATION_FILES),
    (
        "application-specific-tls",
        "application",
        {"app_name": "grafana", "specific_tls_naming": True},
        TBOT_APPLICATION_FILES | TBOT_SPECIFIC_TLS_FILES,
    ),
]


@pytest.mark.parametrize(
    ("kind", "keys", "files"),
    [case[1:] for case in OUTPUT_FILES],
    ids=[case[0] for case in OUTPUT_FILES],
)
def test_output_writes_tbots_files(
    standin: Standin, kind: str, keys: dict[str, Any], files: frozenset[str]
) -> None:
    out_dir = standin.tmp / "new" / "out"
    result = standin.start(output_config(out_dir, kind, **keys))
    assert result.returncode == 0, result.stderr
    assert {p.name for p in out_dir.iterdir()} == files
    assert {mode(p) for p in out_dir.iterdir()} == {0o600}
    assert mode(out_dir) == mode(out_dir.parent) == 0o700
    # The credentials an application or a kubeconfig uses, shaped like the real ones.
    assert is_pem((out_dir / "tlscert").read_text(), "CERTIFICATE")
    assert is_pem((out_dir / "key").read_text(), "RSA PRIVATE KEY")
    assert f"output:{kind} destination:" in result.stderr


def test_specific_tls_naming_copies_the_credentials(standin: Standin) -> None:
    out_dir = standin.out_dir
    config = output_config(out_dir, "application", app_name="grafana", specific_tls_naming=True)
    assert standin.start(config).returncode == 0
    read = {name: (out_dir / name).read_text() for name in TBOT_APPLICATION_FILES}
    assert (out_dir / "tls.crt").read_text() == read["tlscert"]
    assert (out_dir / "tls.key").read_text() == read["key"]
    assert (out_dir / "tls.cas").read_text() == read["teleport-host-ca.crt"]


@pytest.mark.parametrize("kind", ["kubernetes", "application"])
def test_non_directory_destination_writes_nothing(standin: Standin, kind: str) -> None:
    keys = {"kubernetes": {"kubernetes_cluster": "k1"}, "application": {"app_name": "a"}}[kind]
    config = output_config(standin.out_dir, kind, **keys)
    config["outputs"][0]["destination"] = {"type": "memory"}
    result = standin.start(config)
    assert result.returncode == 0, result.stderr
    assert not standin.out_dir.exists()


# --- the kubeconfig ----------------------------------------------------------------------


def kubeconfig_problems(doc: Any, base: Path) -> list[str]:
    """What would stop kubectl from using this kubeconfig's current context."""
    if not isinstance(doc, dict):
        return ["not a mapping"]
    problems = []
    if (doc.get("apiVersion"), doc.get("kind")) != ("v1", "Config"):
        problems.append("not apiVersion v1, kind Config")
    named: dict[str, dict[str, Any]] = {}
    for section, body in (("clusters", "cluster"), ("contexts", "context"), ("users", "user")):
        entries = doc.get(section)
        if not isinstance(entries, list) or not all(
            isinstance(e, dict) and isinstance(e.get(body), dict) and e.get("name") for e in entries
        ):
            problems.append(f"{section} is not a list of named {body} entries")
            entries = []
        named[section] = {e["name"]: e[body] for e in entries}
    context = named["contexts"].get(doc.get("current-context", ""))
    if context is None:
        return [*problems, "current-context names no context"]
    cluster = named["clusters"].get(context.get("cluster", ""))
    user = named["users"].get(context.get("user", ""))
    if cluster is None or user is None:
        return [*problems, "the current context names a missing cluster or user"]
    if not str(cluster.get("server", "")).startswith("https://"):
        problems.append("cluster server is not https")
    for entry, key in (
        (cluster, "certificate-authority"),
        (user, "client-certificate"),
        (user, "client-key"),
    ):
        if key in entry and not (base / entry[key]).is_file():
            problems.append(f"{key} file {entry[key]} is missing")
        elif key not in entry and f"{key}-data" not in entry:
            problems.append(f"no {key}")
    return problems


@pytest.mark.parametrize(
    ("address_key", "address", "server", "host"),
    [
        (
            "proxy_server",
            "tele.example.com:443",
            "https://tele.example.com:443",
            "tele.example.com",
        ),
        (
            "proxy_server",
            "tele.example.com:3080",
            "https://tele.example.com:3080",
            "tele.example.com",
        ),
        ("proxy_server", "teleport.internal", "https://teleport.internal:443", "teleport.internal"),
        ("auth_server", "tele.example.com:443", "https://tele.example.com:443", "tele.example.com"),
    ],
    ids=["proxy-443", "proxy-3080", "no-port", "auth-server"],
)
def test_kubeconfig_points_at_the_proxy_and_the_files_beside_it(
    standin: Standin, address_key: str, address: str, server: str, host: str
) -> None:
    out_dir = standin.out_dir
    config = output_config(out_dir, "kubernetes", kubernetes_cluster="prod-eks")
    del config["proxy_server"]
    config[address_key] = address
    assert standin.start(config).returncode == 0

    doc = yaml.safe_load((out_dir / TBOT_KUBECONFIG_FILE).read_text())
    assert kubeconfig_problems(doc, out_dir) == []
    name = f"{host}-prod-eks"  # tbot's context name: <teleport cluster>-<kube cluster>
    assert doc["current-context"] == name
    assert doc["contexts"] == [{"name": name, "context": {"cluster": name, "user": name}}]
    assert doc["clusters"] == [
        {
            "name": name,
            "cluster": {
                "server": server,
                "tls-server-name": f"kube-teleport-proxy-alpn.{host}",
                "certificate-authority": str(out_dir / "teleport-host-ca.crt"),
            },
        }
    ]
    assert doc["users"] == [
        {
            "name": name,
            "user": {
                "client-certificate": str(out_dir / "tlscert"),
                "client-key": str(out_dir / "key"),
            },
        }
    ]


def test_kubeconfig_without_exec_plugin_embeds_the_credentials(standin: Standin) -> None:
    out_dir = standin.out_dir
    config = output_config(out_dir, "kubernetes", kubernetes_cluster="k1", disable_exec_plugin=True)
    assert standin.start(config).returncode == 0
    doc = yaml.safe_load((out_dir / TBOT_KUBECONFIG_FILE).read_text())
    assert kubeconfig_problems(doc, out_dir) == []
    ((cluster,), (user,)) = (doc["clusters"], doc["users"])

    def data(entry: dict[str, Any], key: str) -> str:
        return base64.b64decode(entry[f"{key}-data"]).decode()

    assert data(cluster["cluster"], "certificate-authority") == (
        (out_dir / "teleport-host-ca.crt").read_text()
    )
    assert data(user["user"], "client-certificate") == (out_dir / "tlscert").read_text()
    assert data(user["user"], "client-key") == (out_dir / "key").read_text()
    assert "certificate-authority" not in cluster["cluster"]


def test_kubeconfig_problems_catches_a_broken_kubeconfig(tmp_path: Path) -> None:
    # The checker itself: a kubeconfig kubectl could not use must not pass.
    good = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://h:443"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "users": [{"name": "u", "user": {"client-certificate": "cert", "client-key": "key"}}],
        "current-context": "x",
    }
    (tmp_path / "cert").write_text("c")
    assert kubeconfig_problems(good, tmp_path) == [
        "no certificate-authority",
        "client-key file key is missing",
    ]
    broken = copy.deepcopy(good)
    broken["current-context"] = "y"
    assert kubeconfig_problems(broken, tmp_path) == ["current-context names no context"]


# --- lenient below the top level ------------------------------------------------------------

Mutation = Callable[[Config], None]


def _add(path: str, key: str, value: object) -> Mutation:
    """Add ``key`` to the mapping at a dotted path (numbers index lists)."""

    def mutate(config: Config) -> None:
        node: Any = config
        for part in path.split("."):
            node = node[int(part)] if part.isdigit() else node[part]
        node[key] = value

    return mutate


# (id, the config to start from, an unknown key added somewhere below the top level)
LENIENT: list[tuple[str, str, Mutation]] = [
    ("identity-output", "identity", _add("outputs.0", "ttl", "1h")),
    ("output-destination", "identity", _add("outputs.0.destination", "mode", "0700")),
    ("storage", "identity", _add("storage", "size", 3)),
    ("kubernetes-output", "kubernetes", _add("outputs.0", "context_name", {"a": 1})),
    ("application-output", "application", _add("outputs.0", "port", 8080)),
    ("service", "identity", lambda c: c["services"].append({**tunnel("x"), "bogus": [1]})),
]


def tunnel(name: str) -> Config:
    service: Config = tunnel_config("application-tunnel", "tcp://127.0.0.1:1")["services"][0]
    return {**service, "name": name}


def family_config(kind: str, out_dir: Path) -> Config:
    keys = {"kubernetes": {"kubernetes_cluster": "k1"}, "application": {"app_name": "a"}}
    return output_config(out_dir, kind, **keys.get(kind, {}))


@pytest.mark.parametrize(
    ("kind", "mutation"), [case[1:] for case in LENIENT], ids=[case[0] for case in LENIENT]
)
def test_unknown_nested_keys_are_ignored(standin: Standin, kind: str, mutation: Mutation) -> None:
    config = family_config(kind, standin.out_dir)
    mutation(config)
    result = standin.start(config)
    assert result.returncode == 0, result.stderr
    assert (standin.out_dir / "tlscert").is_file()


def test_onboarding_stays_strict(standin: Standin) -> None:
    # onboarding is decoded with the top level, so an unknown key there is an error.
    config = family_config("kubernetes", standin.out_dir)
    config["onboarding"]["join_token"] = "x"
    result = standin.start(config)
    (error,) = error_lines(result.stderr)
    assert error.startswith("ERROR: failed parsing config file: yaml: unmarshal errors:  line ")
    assert error.endswith(": field join_token not found in type config.OnboardingConfig")


# --- invalid outputs and services ----------------------------------------------------------


def _set(index: int, section: str, **keys: object) -> Mutation:
    def mutate(config: Config) -> None:
        config[section][index].update(keys)

    return mutate


def _drop(section: str, key: str) -> Mutation:
    def mutate(config: Config) -> None:
        del config[section][0][key]

    return mutate


def _with_tunnel(kind: str, then: Mutation | None = None) -> Mutation:
    def mutate(config: Config) -> None:
        config["services"] = tunnel_config(kind, "tcp://127.0.0.1:1")["services"]
        if then is not None:
            then(config)

    return mutate


# (id, the config to start from, what breaks it, the ERROR message or a part of it)
INVALID: list[tuple[str, str, Mutation, str]] = [
    (
        "kube-cluster-missing",
        "kubernetes",
        _drop("outputs", "kubernetes_cluster"),
        "kubernetes_cluster must not be empty",
    ),
    (
        "kube-cluster-not-string",
        "kubernetes",
        _set(0, "outputs", kubernetes_cluster=["a"]),
        "cannot unmarshal !!seq into string",
    ),
    (
        "kube-exec-plugin-not-bool",
        "kubernetes",
        _set(0, "outputs", disable_exec_plugin="maybe"),
        "cannot unmarshal !!str `maybe` into bool",
    ),
    ("app-name-missing", "application", _drop("outputs", "app_name"), "app_name must not be empty"),
    (
        "app-tls-naming-not-bool",
        "application",
        _set(0, "outputs", specific_tls_naming="x"),
        "`x` into bool",
    ),
    (
        "output-roles-not-list",
        "application",
        _set(0, "outputs", roles="admin"),
        "cannot unmarshal !!str `admin` into []string",
    ),
    (
        "database-output-no-service",
        "identity",
        lambda c: c["outputs"].append({"type": "database", "destination": {"type": "memory"}}),
        "service must not be empty",
    ),
    *(
        (
            f"db-tunnel-no-{key}",
            "identity",
            _with_tunnel("database-tunnel", _drop("services", key)),
            f"validating service[0]: {key}: should not be empty",
        )
        for key in ("listen", "service", "database", "username")
    ),
    (
        "app-tunnel-no-app-name",
        "identity",
        _with_tunnel("application-tunnel", _drop("services", "app_name")),
        "validating service[0]: app_name: should not be empty",
    ),
    (
        "app-proxy-no-listen",
        "identity",
        _with_tunnel("application-proxy", _drop("services", "listen")),
        "validating service[0]: listen: should not be empty",
    ),
    (
        "listen-not-string",
        "identity",
        _with_tunnel("application-proxy", _set(0, "services", listen={"port": 1})),
        "cannot unmarshal !!map into string",
    ),
    (
        "tunnel-roles-not-list",
        "identity",
        _with_tunnel("database-tunnel", _set(0, "services", roles="admin")),
        "!!str `admin` into []string",
    ),
    (
        "service-ttl-not-duration",
        "identity",
        _with_tunnel("application-tunnel", _set(0, "services", credential_ttl="1 day")),
        "cannot unmarshal !!str `1 day` into time.Duration",
    ),
]


@pytest.mark.parametrize(
    ("kind", "mutation", "message"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
def test_invalid_output_or_service(
    standin: Standin, kind: str, mutation: Mutation, message: str
) -> None:
    config = family_config(kind, standin.out_dir)
    mutation(config)
    result = standin.start(config)
    assert result.returncode == 1
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert message in errors[0]
    assert not standin.out_dir.exists()


def test_one_shot_skips_tunnels(standin: Standin) -> None:
    config = family_config("identity", standin.out_dir)
    config["services"] = [tunnel("web")]
    result = standin.start(config)
    assert result.returncode == 0, result.stderr
    assert "Service does not support oneshot mode, will not run. service:web" in result.stderr
    assert "Listening for connections." not in result.stderr


# --- telemetry counts -------------------------------------------------------------------


def _counts(other: int = 0, db: int = 0, kube: int = 0, app: int = 0) -> dict[str, int]:
    return {
        "destinations_other": other,
        "destinations_database": db,
        "destinations_kubernetes": kube,
        "destinations_application": app,
    }


# (id, outputs by type, services by type, the counts tbot reports)
COUNTS: list[tuple[str, list[str], list[str], dict[str, int]]] = [
    ("auth", ["identity"], [], _counts(other=1)),
    ("auth-k8s", ["kubernetes"], [], _counts(kube=1)),
    ("auth-application", ["application"], [], _counts(app=1)),
    ("database-output", ["database"], [], _counts(db=1)),
    ("services-not-counted", [], ["database-tunnel", "application-proxy"], _counts()),
    (
        "mixed",
        ["identity", "kubernetes", "application", "database", "ssh_host"],
        ["application-tunnel"],
        _counts(other=2, db=1, kube=1, app=1),
    ),
]
_KEYS = {
    "kubernetes": {"kubernetes_cluster": "k1"},
    "application": {"app_name": "a"},
    "database": {"service": "pg"},
}


@pytest.mark.parametrize(
    ("outputs", "services", "counts"),
    [case[1:] for case in COUNTS],
    ids=[case[0] for case in COUNTS],
)
def test_telemetry_counts_destinations_like_tbot(
    standin: Standin,
    collector: Collector,
    outputs: list[str],
    services: list[str],
    counts: dict[str, int],
) -> None:
    enable_telemetry(standin.env, collector)
    config = base_config()
    config["outputs"] = [
        {"type": kind, "destination": {"type": "memory"}, **_KEYS.get(kind, {})} for kind in outputs
    ]
    config["services"] = [
        tunnel_config(kind, "tcp://127.0.0.1:1")["services"][0] for kind in services
    ]
    result = standin.start(config)
    assert result.returncode == 0, result.stderr
    (start,) = collector.starts()
    assert start.run_mode == tbot_pb2.TbotStartEvent.RUN_MODE_ONE_SHOT
    assert {field: getattr(start, field) for field in counts} == counts
