"""The config file, version parsing, and tbot's environment (per-member configs: test_family)."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path
from typing import Any, cast

import pytest
import yaml

from teleport_auth.config import (
    build_config,
    private_dir,
    redacted,
    remove_private_dir,
    to_file_text,
    to_yaml,
    write_config,
)
from teleport_auth.family import auth
from teleport_auth.gha import ActionFailure
from teleport_auth.inputs import Inputs
from teleport_auth.tbot import parse_version, tbot_env
from teleport_auth.tbot_schema import BotConfig

pytestmark = pytest.mark.step

DEST = Path("/runner/tmp/dest")


def inputs(**overrides: Any) -> Inputs:
    base: dict[str, Any] = {
        "proxy": "tele.example.com:443",
        "token": "t",
        "certificate_ttl": "",
        "ca_pins": (),
        "disable_env_vars": False,
    }
    return Inputs(**(base | overrides))


def auth_config(**overrides: Any) -> BotConfig:
    return build_config(inputs(**overrides), auth.Auth(allow_reissue=False), DEST, oneshot=True)


def test_redacted_copy_hides_token_only() -> None:
    config = auth_config(token="SECRET-TOKEN")
    shown = to_yaml(redacted(config))
    assert "SECRET-TOKEN" not in shown
    assert "<redacted>" in shown
    assert config["onboarding"]["token"] == "SECRET-TOKEN"  # the original is untouched


def test_config_file_and_dirs_are_private(tmp_path: Path) -> None:
    directory = private_dir(tmp_path)
    path = write_config(auth_config(), directory)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert yaml.safe_load(path.read_text()) == auth_config()
    with pytest.raises(FileExistsError):  # never reuses (or follows) an existing file
        write_config(auth_config(), directory)


@pytest.mark.parametrize(
    ("line", "text", "enterprise"),
    [
        ("Teleport v16.4.2 git:v16.4.2-0-g1a2b3c4 go1.22.8", "16.4.2", False),
        ("Teleport Enterprise v17.2.8 git:v17.2.8-0-gabc go1.23.4", "17.2.8", True),
        ("Teleport v18.0.0-rc.1 git:v18.0.0-rc.1-0-gabc go1.24.0", "18.0.0-rc.1", False),
        ("WARN something first\nTeleport v15.0.1 git:x go1.21", "15.0.1", False),
    ],
    ids=["plain", "enterprise", "prerelease", "noise-before"],
)
def test_parse_version(line: str, text: str, enterprise: bool) -> None:
    version = parse_version(line)
    assert version.text == text
    assert version.enterprise is enterprise


@pytest.mark.parametrize(
    "output",
    ["", "tbot version 16", "Teleport 16.4.2", "Teleport vX.Y.Z"],
    ids=["empty", "other-format", "no-v", "not-numbers"],
)
def test_parse_version_rejects(output: str) -> None:
    with pytest.raises(ValueError, match="no 'Teleport"):
        parse_version(output)


def test_tbot_env_hygiene() -> None:
    job = {
        "PATH": "/usr/bin",
        "TELEPORT_PROXY": "old.example.com:443",
        "TELEPORT_AUTH_SERVER": "old.example.com:443",
        "TELEPORT_ANONYMOUS_TELEMETRY": "1",
        "INPUT_TOKEN": "t",
        "ACTIONS_ID_TOKEN_REQUEST_URL": "https://token.example",
    }
    env = tbot_env(job)
    assert "TELEPORT_PROXY" not in env
    assert "TELEPORT_AUTH_SERVER" not in env
    assert not any(key.startswith("INPUT_") for key in env)
    # The step is the sender of record: tbot must not send its own event.
    assert env["TELEPORT_ANONYMOUS_TELEMETRY"] == "0"
    assert env["_TBOT_TELEMETRY_HELPER"] == "gha:teleport-actions/auth"
    assert env["_TBOT_TELEMETRY_HELPER_VERSION"]
    assert env["ACTIONS_ID_TOKEN_REQUEST_URL"] == "https://token.example"
    assert job["TELEPORT_PROXY"] == "old.example.com:443"  # the job's env is untouched


@pytest.mark.parametrize(
    "value",
    [
        'quo"te',
        "back\\slash",
        "colon: space",
        "# hash",
        "ünïcode ☃",
        "a\nb",
        "- dash",
        "&anchor",
        "emoji \U0001f600 beyond U+FFFF",
    ],
)
def test_the_file_is_yaml_that_reads_back_unchanged(value: str) -> None:
    # tbot reads the config as YAML; JSON's syntax is YAML, and escaping keeps values values
    # (test_config_yaml_v3 reads every member's config with tbot's own parser too).
    config = auth_config() | {"certificate_ttl": value}
    text = to_file_text(config)
    # No \\uD83D-style surrogate escapes: tbot's YAML parser refuses them.
    assert "\\ud8" not in text.lower()
    assert yaml.safe_load(text) == config


SMALL: Any = {"version": "v2", "onboarding": {"token": "t", "ca_pins": []}, "outputs": [{"b": 1}]}


def test_the_file_text_is_indented_json_in_the_configs_order() -> None:
    assert to_file_text(SMALL) == (
        "{\n"
        '  "version": "v2",\n'
        '  "onboarding": {\n'
        '    "token": "t",\n'
        '    "ca_pins": []\n'
        "  },\n"
        '  "outputs": [\n'
        "    {\n"
        '      "b": 1\n'
        "    }\n"
        "  ]\n"
        "}\n"
    )


def test_the_debug_logs_yaml_is_block_style_in_the_configs_order() -> None:
    assert to_yaml(SMALL) == (
        "version: v2\nonboarding:\n  token: t\n  ca_pins: []\noutputs:\n- b: 1\n"
    )


def test_the_config_dir_is_private_from_its_creation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No moment where it is open to others: mkdir itself asks for 0700 (the
    # chmod after it only overrides an odd umask).
    monkeypatch.setattr(Path, "chmod", lambda self, mode: None)
    assert stat.S_IMODE(private_dir(tmp_path).stat().st_mode) == 0o700


def test_characters_beyond_ascii_are_escaped_as_yaml_reads_them() -> None:
    # Up to U+FFFF as \uXXXX, beyond it as YAML's \UXXXXXXXX (not a surrogate pair).
    text = to_file_text(cast(Any, {"v": "é\ufffe\uffff\U00010000"}))
    assert '"v": "\\u00e9\\ufffe\\uffff\\U00010000"' in text


def test_text_that_is_not_utf8_cannot_be_written() -> None:
    with pytest.raises(ActionFailure) as caught:
        to_file_text(cast(Any, {"v": "bad\udcff"}))
    assert caught.value.message == (
        "The tbot config would hold text that is not UTF-8 (from RUNNER_TEMP or an input)."
    )


def test_removing_the_config_dir_touches_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    (elsewhere / "keep").write_text("kept")
    monkeypatch.chdir(elsewhere)
    directory = private_dir(tmp_path)
    (directory / "bot-config.yaml").write_text("token")
    remove_private_dir(directory)
    assert not directory.exists()
    assert (elsewhere / "keep").read_text() == "kept"
    # Something unexpected inside (a directory): removed all the same.
    directory = private_dir(tmp_path)
    (directory / "sub").mkdir()
    (directory / "sub" / "file").write_text("x")
    remove_private_dir(directory)
    assert not directory.exists()
    remove_private_dir(directory)  # gone already: nothing to do


def test_without_pyyaml_the_debug_form_is_json(monkeypatch: pytest.MonkeyPatch) -> None:
    # A damaged bundle must not fail a debug run: the config is logged as JSON.
    monkeypatch.setitem(sys.modules, "yaml", None)
    config = auth_config()
    assert to_yaml(config) == json.dumps(config, indent=2)
    assert to_yaml(config).splitlines()[1] == '  "version": "v2",'
