"""Every config the step writes is read by Go's yaml.v3, tbot's parser, exactly as given.

Values YAML cannot carry raw (U+FFFE, U+FFFF; a leading U+FEFF, which yaml.v3
misreads at some offsets of the file) are accepted as tbot accepts them and
written escaped; bytes that are not UTF-8 are refused, naming the input.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

import go_yaml
from conftest import Job
from echo_server import free_port
from step_helpers import stop_daemon
from teleport_auth.config import build_config, private_dir, to_file_text, write_config
from teleport_auth.family import KEYS, member
from teleport_auth.family.spec import SHARED_INPUTS
from teleport_auth.gha import ActionFailure
from teleport_auth.inputs import InputError, env_name, read_inputs, telemetry_consent
from teleport_auth.main import main

pytestmark = pytest.mark.step

# Each member's inputs that are names written into the config as given (token aside).
NAMES = {
    "auth": (),
    "k8s": ("kubernetes-cluster",),
    "application": ("app",),
    "database-tunnel": ("service", "database", "username"),
    "application-tunnel": ("app",),
    "application-proxy": (),
}
# One value per class of what YAML cannot write raw, or writes with syntax of its own.
# None holds whitespace or a control character: those the input checks refuse.
HOSTILE = {
    "noncharacters": "a\ufffeb\uffffc\ufdd0d\U0010fffe",
    "bom": "\ufeffgrafana",
    "beyond-bmp": "x\U0001f600\U0010ffff",
    "non-ascii": "\u00fcn\u00efc\u00f6d\u00e9\u2603\u200b\u00ad",
    "yaml-syntax": "a\"b\\c:#d&e*f!g{h}[i]%j@k`l'm,n|o>p?q-r",
    "escape-lookalikes": "\\u0041\\U0001F600\\x41\\n\\",
}


DAEMONS = ("database-tunnel", "application-tunnel", "application-proxy")


def member_env(key: str, value: str) -> dict[str, str]:
    """Every string input of the member (the token and its names) set to ``value``."""
    env = {env_name("proxy"): "tele.example.com:443", env_name("token"): value}
    env |= {env_name(name): value for name in NAMES[key]}
    if key in DAEMONS:
        env[env_name("listen")] = f"tcp://127.0.0.1:{free_port()}"
        env[env_name("diag-port")] = str(free_port())
    return env


def written(key: str, env: dict[str, str], where: Path) -> tuple[Any, Path]:
    """The config the step writes for these inputs, as the step builds and writes it."""
    found = member(key)
    assert found is not None
    own = found.read(env)
    config = build_config(read_inputs(env), own, where, oneshot=found.oneshot)
    return config, write_config(config, private_dir(where))


def test_every_member_is_covered() -> None:
    assert set(NAMES) == set(KEYS)


@pytest.mark.parametrize("key", KEYS)
def test_yaml_v3_reads_every_value_back_exactly(key: str, goyaml: Path, tmp_path: Path) -> None:
    configs: list[dict[str, Any]] = []
    paths: list[Path] = []
    for value in HOSTILE.values():
        config, path = written(key, member_env(key, value), tmp_path)
        configs.append(config)
        paths.append(path)
    # A value starting with U+FEFF broke yaml.v3 when it fell at byte 507 of 512:
    # the token's length moves the names after it through every offset.
    if NAMES[key]:
        env = member_env(key, HOSTILE["bom"])
        for pad in range(512):
            env[env_name("token")] = "t" * (pad + 1)
            config, path = written(key, env, tmp_path)
            configs.append(config)
            paths.append(path)
    for config, path, parsed in zip(configs, paths, go_yaml.read(goyaml, *paths), strict=True):
        assert parsed.error == "", f"yaml.v3 cannot read {path}: {parsed.error}"
        assert parsed.document == config


def test_written_values_are_those_given(tmp_path: Path) -> None:
    # Nothing is changed on the way: the config holds exactly the values given.
    for key in KEYS:
        for value in HOSTILE.values():
            config, _ = written(key, member_env(key, value), tmp_path)
            assert config["onboarding"]["token"] == value
            entry = (config["outputs"] + config["services"])[0]
            assert [entry[field] for field in fields(key)] == [value] * len(NAMES[key])


def fields(key: str) -> tuple[str, ...]:
    """The config fields the member's names go to."""
    renamed = {"kubernetes-cluster": "kubernetes_cluster", "app": "app_name"}
    return tuple(renamed.get(name, name) for name in NAMES[key])


def test_the_file_is_ascii_and_beyond_u_ffff_uses_yaml_escapes() -> None:
    config: Any = {"a": "x\U0001f600\ufeff\x7f"}
    text = to_file_text(config)
    assert text.isascii()
    # JSON's surrogate pair (\\ud83d\\ude00) is refused by yaml.v3: YAML's 8-digit escape.
    assert "\\U0001f600" in text
    assert "\\ufeff" in text


def test_text_that_is_not_utf8_is_never_written(tmp_path: Path) -> None:
    config: Any = {"path": b"/tmp/\xff".decode("utf-8", "surrogateescape")}
    with pytest.raises(ActionFailure) as caught:
        to_file_text(config)
    assert "not UTF-8" in caught.value.message


def read_all(key: str, env: dict[str, str]) -> None:
    """Everything the step reads from the inputs, in its order."""
    read_inputs(env)
    found = member(key)
    assert found is not None
    found.read(env)
    telemetry_consent(env)


# What os.environ holds for a byte that is not UTF-8 (PEP 383's surrogate escape).
NOT_UTF8 = b"canary-7f3a\xff".decode("utf-8", "surrogateescape")
EVERY_INPUT = {
    key: (
        "proxy",
        "token",
        "certificate-ttl",
        "ca-pins",
        "disable-env-vars",
        "anonymous-telemetry",
        *NAMES[key],
        *(("allow-reissue",) if key == "auth" else ()),
        *(("listen", "timeout-ms", "diag-port") if key in DAEMONS else ()),
    )
    for key in KEYS
}


@pytest.mark.parametrize(
    ("key", "name"), [(key, name) for key in KEYS for name in EVERY_INPUT[key]]
)
def test_bytes_that_are_not_utf8_are_refused_naming_the_input(key: str, name: str) -> None:
    env = member_env(key, "fine")
    env[env_name(name)] = NOT_UTF8
    with pytest.raises(InputError) as caught:
        read_all(key, env)
    assert caught.value.message.startswith(f"Input '{name}' must be UTF-8 text")
    assert "canary-7f3a" not in caught.value.message


def test_every_input_is_checked() -> None:
    for key in KEYS:
        found = member(key)
        assert found is not None
        declared = {spec.name for spec in (*SHARED_INPUTS, *found.inputs)}
        assert declared == set(EVERY_INPUT[key])


@pytest.mark.parametrize("key", KEYS)
def test_the_step_runs_tbot_with_values_yaml_cannot_write_raw(
    key: str, job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    # With Go installed the stand-in reads the config with yaml.v3 first, as tbot does.
    value = HOSTILE["noncharacters"] + HOSTILE["bom"]
    job.env |= member_env(key, value) | {"STANDIN_TBOT_VERSION": "18.6.4"}
    code = main([key])
    log = capsys.readouterr().out
    if "tbot-pid" in job.outputs:
        stop_daemon(int(job.outputs["tbot-pid"]))
    assert code == 0, log
    [record] = [r for r in job.records if "start" in r["argv"]]
    assert record["config"]["onboarding"]["token"] == value
    entry = (record["config"]["outputs"] + record["config"]["services"])[0]
    assert [entry[field] for field in fields(key)] == [value] * len(NAMES[key])


def test_the_standin_refuses_what_yaml_v3_refuses(job: Job, goyaml: Path, tmp_path: Path) -> None:
    # A value starting with U+FEFF at byte 507, written raw: PyYAML reads it, yaml.v3 does not.
    def raw(pad: int) -> str:
        config = {"version": "v2", "onboarding": {"token": "t" * pad}, "x": [{"a": "\ufeffb"}]}
        return json.dumps(config, indent=2, ensure_ascii=False) + "\n"

    text = raw(507 - raw(0).encode().index("\ufeff".encode()))
    assert text.encode().index("\ufeff".encode()) == 507
    config = tmp_path / "bom.yaml"
    config.write_text(text, encoding="utf-8")
    [parsed] = go_yaml.read(goyaml, config)
    assert parsed.error.startswith("yaml: ")
    done = subprocess.run(
        ["tbot", "start", "-c", str(config)],
        env=job.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (
        1,
        f"ERROR: failed parsing config file version: {parsed.error}\n",
    )
