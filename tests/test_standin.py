"""The tbot stand-in behaves like real tbot wherever the action can observe it.

Here: the CLI, config validation, identity outputs, the knobs, telemetry and the
installer. Other output types: test_standin_outputs.py; the daemon:
test_standin_daemon.py.
"""

from __future__ import annotations

import copy
import shlex
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import TBOT_IDENTITY_FILES, TBOT_SSH_FILES
from standin.harness import (
    TOKEN,
    Collector,
    Config,
    Standin,
    action_config,
    enable_telemetry,
    error_lines,
    mode,
)
from standin.install import TBOT_SCRIPT, install_standin
from teleport_auth._proto.prehog.v1alpha import tbot_pb2

PIN = "sha256:" + "ab" * 32
IDENTITY_FILES = TBOT_IDENTITY_FILES
SSH_FILES = TBOT_SSH_FILES
TELEMETRY_DOCS = "https://goteleport.com/docs/reference/machine-id/telemetry/"
HELPER = "gha:teleport-actions/auth"


# --- version and CLI ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("edition", "prefix"),
    [(None, "Teleport v"), ("enterprise", "Teleport Enterprise v")],
    ids=["community", "enterprise"],
)
def test_version_line(standin: Standin, edition: str | None, prefix: str) -> None:
    standin.env["STANDIN_TBOT_VERSION"] = "17.2.8"
    if edition:
        standin.env["STANDIN_TBOT_EDITION"] = edition
    result = standin.run("version")
    assert result.returncode == 0
    assert result.stdout == f"{prefix}17.2.8 git:v17.2.8-0-g1a2b3c4 go1.22.8\n"


def test_version_defaults_to_16_4_2(standin: Standin) -> None:
    assert standin.run("version").stdout == "Teleport v16.4.2 git:v16.4.2-0-g1a2b3c4 go1.22.8\n"


@pytest.mark.parametrize(
    "args",
    [
        ["start", "-c", "{cfg}"],
        ["start", "--config", "{cfg}"],
        ["start", "--config={cfg}"],
        ["start", "legacy", "-c", "{cfg}"],
        ["-d", "start", "-c", "{cfg}"],
        ["start", "-c", "{cfg}", "--diag-addr", "127.0.0.1:9"],
        ["start", "-c", "{cfg}", "--diag-addr=127.0.0.1:9"],
    ],
    ids=["short", "long", "long-equals", "v17-legacy", "global-debug", "diag", "diag-equals"],
)
def test_start_spellings(standin: Standin, args: list[str]) -> None:
    standin.config_path.write_text(yaml.safe_dump(standin.config()))
    result = standin.run(*(a.replace("{cfg}", str(standin.config_path)) for a in args))
    assert result.returncode == 0, result.stderr
    assert (standin.out_dir / "identity").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["start", "-c", "{cfg}", "--bogus"], "ERROR: unknown flag '--bogus'"),
        (["start", "-c", "{cfg}", "--oneshot=true"], "ERROR: unknown flag '--oneshot'"),
        (["start", "-x"], "ERROR: unknown flag '-x'"),
        (["start", "-c"], "ERROR: expected argument for flag '-c'"),
        (["start"], "ERROR: the tbot stand-in needs a config file: tbot start -c PATH"),
        (["init"], 'ERROR: expected command but got "init"'),
        ([], "ERROR: expected command but got nothing"),
        (["start", "identity", "-c", "{cfg}"], 'ERROR: unexpected argument "identity"'),
        (["version", "--config", "{cfg}"], "ERROR: unknown flag '--config'"),
        (
            ["start", "-c", "{cfg}", "--diag-addr"],
            "ERROR: expected argument for flag '--diag-addr'",
        ),
        (["version", "--diag-addr=127.0.0.1:9"], "ERROR: unknown flag '--diag-addr'"),
    ],
    ids=[
        "unknown-long",
        "unknown-with-value",
        "unknown-short",
        "missing-value",
        "no-config",
        "unknown-command",
        "no-command",
        "unsupported-subcommand",
        "config-on-version",
        "diag-missing-value",
        "diag-on-version",
    ],
)
def test_cli_errors(standin: Standin, args: list[str], message: str) -> None:
    standin.config_path.write_text(yaml.safe_dump(standin.config()))
    result = standin.run(*(a.replace("{cfg}", str(standin.config_path)) for a in args))
    assert result.returncode == 1
    assert error_lines(result.stderr) == [message]
    assert not standin.out_dir.exists()


def test_debug_flag_adds_debug_lines(standin: Standin) -> None:
    assert " DEBU " not in standin.start().stderr
    assert " DEBU [TBOT]" in standin.start(None, "--debug").stderr


# --- config validation -------------------------------------------------------------

Mutation = Callable[[Config], None]


def _parent(config: Config, path: str) -> tuple[Any, str | int]:
    """The node holding a dotted path's last part; numbers index lists."""
    *parents, last = path.split(".")
    node: Any = config
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    return node, int(last) if last.isdigit() else last


def _set(path: str, value: object) -> Mutation:
    def mutate(config: Config) -> None:
        node, key = _parent(config, path)
        node[key] = value

    return mutate


def _drop(path: str) -> Mutation:
    def mutate(config: Config) -> None:
        node, key = _parent(config, path)
        del node[key]

    return mutate


def _both_ca_options(config: Config) -> None:
    config["onboarding"].update(ca_pins=[PIN], ca_path="/etc/ca.pem")


# (id, mutation of the action's config or raw YAML, the ERROR message or a part of it)
INVALID_CONFIGS: list[tuple[str, Mutation | str, str]] = [
    (
        "unknown-top-level-key",
        "version: v2\nproxy_server: tele.example.com:443\nproxy: x\n",
        "failed parsing config file: yaml: unmarshal errors:  "
        "line 3: field proxy not found in type config.BotConfig",
    ),
    ("version-v1", _set("version", "v1"), 'unrecognized config version "v1"'),
    ("version-missing", _drop("version"), 'unrecognized config version ""'),
    (
        "proxy-and-auth",
        _set("auth_server", "auth.example.com:3025"),
        "auth_server and proxy_server cannot both be set",
    ),
    (
        "no-address",
        _drop("proxy_server"),
        "either a proxy or auth address must be set using --proxy-server, "
        "--auth-server or configuration",
    ),
    (
        "onboarding-unknown-key",
        _set("onboarding.join_token", "x"),
        "field join_token not found in type config.OnboardingConfig",
    ),
    ("join-method-unknown", _set("onboarding.join_method", "magic"), 'join method: "magic"'),
    ("join-method-missing", _drop("onboarding.join_method"), 'unrecognized join method: ""'),
    ("token-missing", _drop("onboarding.token"), "no token configured"),
    ("ca-pins-and-ca-path", _both_ca_options, "options ca-pin and ca-path are mutually exclusive"),
    ("ca-pin-no-prefix", _set("onboarding.ca_pins", ["ab" * 32]), "invalid CA pin"),
    ("ca-pin-short", _set("onboarding.ca_pins", ["sha256:abc"]), "invalid CA pin"),
    ("ca-pin-not-hex", _set("onboarding.ca_pins", ["sha256:" + "zz" * 32]), "invalid CA pin"),
    ("ca-pins-not-list", _set("onboarding.ca_pins", {"a": 1}), "!!map into []string"),
    ("ttl-words", _set("certificate_ttl", "1 hour"), "cannot unmarshal !!str `1 hour` into"),
    ("ttl-no-unit", _set("certificate_ttl", "10"), "!!str `10` into time.Duration"),
    ("ttl-int", _set("certificate_ttl", 60), "cannot unmarshal !!int `60` into time.Duration"),
    ("ttl-days", _set("certificate_ttl", "10d"), "`10d` into time.Duration"),
    ("renewal-bad", _set("renewal_interval", "soon"), "`soon` into time.Duration"),
    ("storage-unknown-type", _set("storage", {"type": "disk"}), "destination type (disk)"),
    ("storage-k8s-secret", _set("storage.type", "kubernetes_secret"), "type (kubernetes_secret)"),
    ("storage-dir-no-path", _set("storage", {"type": "directory"}), "path must not be empty"),
    ("outputs-not-list", _set("outputs", {"type": "identity"}), "!!map into config.Outputs"),
    ("output-unknown-type", _set("outputs.0.type", "bogus"), "unrecognized output type (bogus)"),
    ("identity-cluster-not-string", _set("outputs.0.cluster", [1]), "!!seq into string"),
    ("identity-no-destination", _drop("outputs.0.destination"), "no destination configured"),
    ("ssh-config-bad", _set("outputs.0.ssh_config", "maybe"), 'ssh_config mode: "maybe"'),
    ("allow-reissue-bad", _set("outputs.0.allow_reissue", "sure"), "`sure` into bool"),
    ("roles-not-list", _set("outputs.0.roles", "admin"), "!!str `admin` into []string"),
    ("destination-bad-type", _set("outputs.0.destination.type", "s3"), "destination type (s3)"),
    ("destination-no-path", _drop("outputs.0.destination.path"), "path must not be empty"),
    ("destination-path-not-string", _set("outputs.0.destination.path", {}), "!!map into string"),
    ("symlinks-bad", _set("outputs.0.destination.symlinks", "maybe"), 'symlinks mode: "maybe"'),
    ("acls-bad", _set("outputs.0.destination.acls", "on"), 'acls mode: "on"'),
    ("services-not-list", _set("services", {}), "!!map into config.ServiceConfigs"),
    ("service-unknown-type", _set("services", [{"type": "nope"}]), "service type (nope)"),
    ("service-not-a-map", _set("services", ["x"]), "!!str `x` into config.ServiceConfig"),
    ("oneshot-not-bool", _set("oneshot", "maybe"), "`maybe` into bool"),
    ("fips-on-non-fips-binary", _set("fips", True), "FIPS mode enabled"),
    ("not-yaml", "version: v2\nproxy_server: [\n", "failed parsing config file version: yaml:"),
    ("empty-file", "", "failed parsing config file version: EOF"),
    ("not-a-mapping", "- v2\n", "cannot unmarshal !!seq into"),
    (
        "duplicate-key",
        "version: v2\noneshot: true\noneshot: false\n",
        'line 3: mapping key "oneshot" already defined at line 2',
    ),
]


@pytest.mark.parametrize(
    ("mutation", "message"),
    [case[1:] for case in INVALID_CONFIGS],
    ids=[case[0] for case in INVALID_CONFIGS],
)
def test_invalid_config(standin: Standin, mutation: Mutation | str, message: str) -> None:
    if isinstance(mutation, str):
        config: Config | str = mutation
    else:
        config = copy.deepcopy(standin.config())
        mutation(config)
    result = standin.start(config)
    assert result.returncode == 1
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert message in errors[0]
    assert result.stdout == ""
    assert not standin.out_dir.exists()


def test_all_unknown_keys_reported_with_lines(standin: Standin) -> None:
    result = standin.start("version: v2\nfoo: 1\nonboarding:\n  join_method: token\n  bar: 2\n")
    assert error_lines(result.stderr) == [
        "ERROR: failed parsing config file: yaml: unmarshal errors:  "
        "line 2: field foo not found in type config.BotConfig  "
        "line 5: field bar not found in type config.OnboardingConfig"
    ]


@pytest.mark.parametrize("duration", ["90m", "1h30m", "10s", "1.5h", "0", "1\u00b5s"])
def test_valid_go_durations(standin: Standin, duration: str) -> None:
    config = standin.config()
    config["certificate_ttl"] = config["renewal_interval"] = duration
    result = standin.start(config)
    assert result.returncode == 0, result.stderr


def test_unquoted_off_is_a_string_like_in_go(standin: Standin) -> None:
    # yaml.v3 (YAML 1.2) keeps on/off as strings, so `ssh_config: off` must work unquoted.
    text = yaml.safe_dump(standin.config(), sort_keys=False)
    result = standin.start(text.replace("roles: []", "roles: []\n  ssh_config: off"))
    assert result.returncode == 0, result.stderr
    assert not (standin.out_dir / "ssh_config").exists()


@pytest.mark.parametrize(
    "variable", ["ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
)
def test_github_join_needs_id_token_env(standin: Standin, variable: str) -> None:
    del standin.env[variable]
    result = standin.start()
    assert result.returncode == 1
    assert error_lines(result.stderr) == [f"ERROR: {variable} environment variable missing"]
    assert not standin.out_dir.exists()


def test_token_join_does_not_need_github_env(standin: Standin) -> None:
    del standin.env["ACTIONS_ID_TOKEN_REQUEST_URL"], standin.env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
    config = standin.config()
    config["onboarding"]["join_method"] = "token"
    result = standin.start(config)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("variable", "address_key"),
    [
        ("TELEPORT_PROXY", "proxy_server"),
        ("TELEPORT_AUTH_SERVER", "proxy_server"),
        ("TELEPORT_PROXY", "auth_server"),
        ("TELEPORT_AUTH_SERVER", "auth_server"),
    ],
    ids=["proxy-env-proxy-cfg", "auth-env-proxy-cfg", "proxy-env-auth-cfg", "auth-env-auth-cfg"],
)
def test_left_over_teleport_env_clashes(standin: Standin, variable: str, address_key: str) -> None:
    config = standin.config()
    config[address_key] = config.pop("proxy_server")
    standin.env[variable] = "old.example.com:443"
    result = standin.start(config)
    assert result.returncode == 1
    assert error_lines(result.stderr) == [
        f"ERROR: {variable} from the environment clashes with {address_key} in the config: "
        "auth_server and proxy_server cannot both be set"
    ]
    assert not standin.out_dir.exists()


# --- outputs ---------------------------------------------------------------------


def test_writes_identity_files_mode_0600(standin: Standin) -> None:
    out_dir = standin.tmp / "new" / "out"
    result = standin.start(action_config(out_dir))
    assert result.returncode == 0, result.stderr
    assert {p.name for p in out_dir.iterdir()} == IDENTITY_FILES | SSH_FILES
    assert {mode(p) for p in out_dir.iterdir()} == {0o600}
    assert mode(out_dir) == mode(out_dir.parent) == 0o700
    identity = (out_dir / "identity").read_text()
    assert identity.startswith("-----BEGIN RSA PRIVATE KEY-----\nMII")
    assert "\n-----BEGIN CERTIFICATE-----\nMII" in identity
    assert (out_dir / "key.pub").read_text().startswith("ssh-rsa AAAAB3NzaC1yc2EAAAADAQAB")
    cert = (out_dir / "key-cert.pub").read_text()
    assert cert.startswith(
        "ssh-rsa-cert-v01@openssh.com AAAAHHNzaC1yc2EtY2VydC12MDFAb3BlbnNzaC5jb20"
    )
    assert "Host *.tele.example.com" in (out_dir / "ssh_config").read_text()
    assert "@cert-authority tele.example.com," in (out_dir / "known_hosts").read_text()
    assert " INFO [TBOT:IDENTITY] Initializing bot identity." in result.stderr
    assert "One-shot mode completed" in result.stderr


def test_never_writes_the_join_token(standin: Standin) -> None:
    result = standin.start(None, "-d")
    assert result.returncode == 0, result.stderr
    assert TOKEN not in result.stderr + result.stdout
    for path in standin.out_dir.iterdir():
        assert TOKEN not in path.read_text()


def test_keeps_mode_of_existing_directory(standin: Standin) -> None:
    standin.out_dir.mkdir()
    standin.out_dir.chmod(0o755)
    key = standin.out_dir / "key"
    key.write_text("old")
    key.chmod(0o644)
    result = standin.start()
    assert result.returncode == 0, result.stderr
    assert mode(standin.out_dir) == 0o755
    assert mode(key) == 0o600
    assert key.read_text() != "old"


def test_ssh_config_off(standin: Standin) -> None:
    config = standin.config()
    config["outputs"][0]["ssh_config"] = "off"
    result = standin.start(config)
    assert result.returncode == 0, result.stderr
    assert {p.name for p in standin.out_dir.iterdir()} == IDENTITY_FILES


def test_try_secure_refuses_a_planted_symlink(standin: Standin) -> None:
    standin.out_dir.mkdir()
    victim = standin.tmp / "victim"
    victim.write_text("keep")
    (standin.out_dir / "identity").symlink_to(victim)
    result = standin.start()
    assert result.returncode == 1
    assert len(error_lines(result.stderr)) == 1
    assert victim.read_text() == "keep"


# --- knobs -----------------------------------------------------------------------


@pytest.mark.parametrize(("exit_code", "expected"), [(None, 1), ("3", 3)], ids=["default", "3"])
def test_fail_knob(standin: Standin, exit_code: str | None, expected: int) -> None:
    standin.env["STANDIN_TBOT_FAIL"] = "failed to join: access denied"
    if exit_code is not None:
        standin.env["STANDIN_TBOT_EXIT_CODE"] = exit_code
    result = standin.start()
    assert result.returncode == expected
    assert error_lines(result.stderr) == ["ERROR: failed to join: access denied"]
    assert not standin.out_dir.exists()


def test_fail_knob_comes_after_validation(standin: Standin) -> None:
    standin.env["STANDIN_TBOT_FAIL"] = "never shown"
    config = standin.config()
    config["bogus"] = True
    result = standin.start(config)
    assert result.returncode == 1
    assert "never shown" not in result.stderr


def test_delay_knob(standin: Standin) -> None:
    standin.env["STANDIN_TBOT_DELAY"] = "0.4"
    started = time.monotonic()
    result = standin.start()
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= 0.4


def test_record_knob(standin: Standin) -> None:
    standin.env["STANDIN_TBOT_RECORD"] = str(standin.record_path)
    standin.env["_TBOT_TELEMETRY_HELPER"] = HELPER
    standin.env["TELEPORT_ANONYMOUS_TELEMETRY"] = "0"
    assert standin.run("version").returncode == 0
    assert standin.start().returncode == 0

    version_run, start_run = standin.records()
    assert version_run["argv"] == ["version"]
    assert version_run["config"] is None
    assert start_run["argv"] == ["start", "-c", str(standin.config_path)]
    assert start_run["config"] == standin.config()
    assert start_run["reported"] is False
    assert start_run["env"] == {
        "TELEPORT_ANONYMOUS_TELEMETRY": "0",
        "TELEPORT_ANONYMOUS_TELEMETRY_ADDRESS": None,
        "_TBOT_TELEMETRY_HELPER": HELPER,
        "_TBOT_TELEMETRY_HELPER_VERSION": None,
        "TELEPORT_PROXY": None,
        "TELEPORT_AUTH_SERVER": None,
    }
    assert start_run["env_keys"] == sorted(standin.env)


def test_record_knob_records_failures(standin: Standin) -> None:
    standin.env["STANDIN_TBOT_RECORD"] = str(standin.record_path)
    standin.env["TELEPORT_PROXY"] = "old.example.com:443"
    assert standin.run("start", "--nope").returncode == 1
    (entry,) = standin.records()
    assert entry["argv"] == ["start", "--nope"]
    assert entry["env"]["TELEPORT_PROXY"] == "old.example.com:443"


# --- telemetry ---------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1", "t"])
def test_telemetry_posts_one_event(standin: Standin, collector: Collector, value: str) -> None:
    enable_telemetry(standin.env, collector, value)
    standin.env["STANDIN_TBOT_RECORD"] = str(standin.record_path)
    config = standin.config()
    memory = {"type": "memory"}
    config["outputs"] += [
        {"type": "application", "destination": memory, "app_name": "grafana"},
        {"type": "database", "destination": memory, "service": "pg"},
        {"type": "kubernetes", "destination": memory, "kubernetes_cluster": "k1"},
        {"type": "ssh_host", "destination": memory},
    ]
    before = time.time()
    result = standin.start(config)
    assert result.returncode == 0, result.stderr
    assert (
        " INFO [TBOT]      Anonymous telemetry is enabled. Find out more about "
        f"Machine ID's anonymous telemetry at {TELEMETRY_DOCS} "
    ) in result.stderr

    (sent,) = collector.requests
    assert sent.path == "/prehog.v1alpha.TbotReportingService/SubmitTbotEvent"
    assert sent.headers["Content-Type"] == "application/proto"
    assert sent.headers["Connect-Protocol-Version"] == "1"
    event = tbot_pb2.SubmitTbotEventRequest.FromString(sent.body)
    assert uuid.UUID(event.distinct_id).version == 4
    assert before - 1 <= event.timestamp.seconds <= time.time()
    assert event.WhichOneof("event") == "start"
    assert event.start == tbot_pb2.TbotStartEvent(
        run_mode=tbot_pb2.TbotStartEvent.RUN_MODE_ONE_SHOT,
        version="16.4.2",
        join_type="github",
        helper=HELPER,
        helper_version="2.0.0",
        destinations_other=2,  # identity and ssh_host
        destinations_application=1,
        destinations_database=1,
        destinations_kubernetes=1,
    )
    (entry,) = standin.records()
    assert entry["reported"] is True


@pytest.mark.parametrize("value", ["0", "yes", "", " 1"])
def test_telemetry_off_sends_nothing(standin: Standin, collector: Collector, value: str) -> None:
    enable_telemetry(standin.env, collector, value)
    result = standin.start()
    assert result.returncode == 0, result.stderr
    assert (
        " INFO [TBOT]      Anonymous telemetry is not enabled. Find out more about "
        f"Machine ID's anonymous telemetry at {TELEMETRY_DOCS} "
    ) in result.stderr
    assert collector.requests == []


def test_telemetry_sent_even_when_the_join_fails(standin: Standin, collector: Collector) -> None:
    enable_telemetry(standin.env, collector)
    standin.env["STANDIN_TBOT_FAIL"] = "join failed"
    assert standin.start().returncode == 1
    assert len(collector.requests) == 1


def test_telemetry_not_sent_for_invalid_config(standin: Standin, collector: Collector) -> None:
    enable_telemetry(standin.env, collector)
    config = standin.config()
    config["nope"] = 1
    assert standin.start(config).returncode == 1
    assert collector.requests == []


def test_telemetry_failure_is_logged_not_fatal(standin: Standin) -> None:
    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    standin.env["TELEPORT_ANONYMOUS_TELEMETRY"] = "1"
    standin.env["TELEPORT_ANONYMOUS_TELEMETRY_ADDRESS"] = f"http://127.0.0.1:{port}"
    standin.env["STANDIN_TBOT_RECORD"] = str(standin.record_path)
    result = standin.start()
    assert result.returncode == 0, result.stderr
    assert " ERRO [TBOT]      Failed to send anonymous telemetry." in result.stderr
    (entry,) = standin.records()
    assert entry["reported"] is False


# --- installer -------------------------------------------------------------------


def test_install_writes_executable_wrapper(tmp_path: Path) -> None:
    path = install_standin(tmp_path / "bin", python="/usr/bin/python3")
    assert path == tmp_path / "bin" / "tbot"
    assert mode(path) == 0o755
    script = shlex.quote(str(TBOT_SCRIPT))
    assert path.read_text() == f'#!/bin/sh\nexec /usr/bin/python3 -I {script} "$@"\n'
    assert [p.name for p in path.parent.iterdir()] == ["tbot"]


def test_install_script_prints_path(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(TBOT_SCRIPT.parent / "install.py"), str(tmp_path / "bin")],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    installed = Path(result.stdout.strip())
    assert installed == tmp_path / "bin" / "tbot"
    version = subprocess.run(
        [str(installed), "version"], capture_output=True, text=True, check=True, timeout=30
    )
    assert version.stdout.startswith("Teleport v")
