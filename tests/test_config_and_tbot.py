"""The tbot config against the original action's, version parsing, and tbot's environment."""

from __future__ import annotations

import copy
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from teleport_auth.config import build_config, private_dir, redacted, to_yaml, write_config
from teleport_auth.gha import ActionFailure
from teleport_auth.inputs import Inputs
from teleport_auth.tbot import (
    TbotVersion,
    check_version,
    parse_version,
    tbot_env,
)

pytestmark = pytest.mark.step

DEST = Path("/runner/tmp/dest")


def inputs(**overrides: Any) -> Inputs:
    base: dict[str, Any] = {
        "proxy": "tele.example.com:443",
        "token": "t",
        "certificate_ttl": "",
        "ca_pins": (),
        "disable_env_vars": False,
        "allow_reissue": False,
    }
    return Inputs(**(base | overrides))


# The original TypeScript action's config for proxy tele.example.com:443, token t (FACTS §1).
ORIGINAL: dict[str, Any] = {
    "version": "v2",
    "proxy_server": "tele.example.com:443",
    "oneshot": True,
    "onboarding": {"join_method": "github", "token": "t", "ca_pins": []},
    "storage": {"type": "memory"},
    "outputs": [
        {
            "type": "identity",
            "destination": {"type": "directory", "symlinks": "try-secure", "path": str(DEST)},
            "roles": [],
        }
    ],
    "services": [],
}


def test_config_matches_original() -> None:
    written = yaml.safe_load(to_yaml(build_config(inputs(), DEST)))
    assert written == ORIGINAL


def test_config_optional_fields() -> None:
    pin = "sha256:" + "0f" * 32
    config = build_config(inputs(certificate_ttl="1h30m", ca_pins=(pin,), allow_reissue=True), DEST)
    assert config["certificate_ttl"] == "1h30m"
    assert config["onboarding"]["ca_pins"] == [pin]
    assert config["outputs"][0]["allow_reissue"] is True
    # Only those three additions differ from the original's config.
    expected = copy.deepcopy(ORIGINAL)
    expected["certificate_ttl"] = "1h30m"
    expected["onboarding"]["ca_pins"] = [pin]
    expected["outputs"][0]["allow_reissue"] = True
    assert yaml.safe_load(to_yaml(config)) == expected


def test_allow_reissue_absent_when_false() -> None:
    assert "allow_reissue" not in build_config(inputs(), DEST)["outputs"][0]


def test_redacted_copy_hides_token_only() -> None:
    config = build_config(inputs(token="SECRET-TOKEN"), DEST)
    shown = to_yaml(redacted(config))
    assert "SECRET-TOKEN" not in shown
    assert "<redacted>" in shown
    assert config["onboarding"]["token"] == "SECRET-TOKEN"  # the original is untouched


def test_config_file_and_dirs_are_private(tmp_path: Path) -> None:
    directory = private_dir(tmp_path)
    path = write_config(build_config(inputs(), DEST), directory)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert yaml.safe_load(path.read_text()) == ORIGINAL
    with pytest.raises(FileExistsError):  # never reuses (or follows) an existing file
        write_config(build_config(inputs(), DEST), directory)


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


def v(text: str) -> TbotVersion:
    return parse_version(f"Teleport v{text} git:x go1.22")


@pytest.mark.parametrize(
    ("version", "allow_reissue", "message"),
    [
        ("13.4.0", False, "too old"),
        ("14.0.0-rc.1", False, "too old"),
        ("17.2.7", True, "'allow-reissue' needs tbot 17.2.8"),
        ("17.2.8-beta.1", True, "'allow-reissue' needs tbot 17.2.8"),
    ],
)
def test_check_version_rejects(version: str, allow_reissue: bool, message: str) -> None:
    with pytest.raises(ActionFailure, match=message):
        check_version(v(version), allow_reissue=allow_reissue)


@pytest.mark.parametrize(
    ("version", "allow_reissue"),
    [("14.0.0", False), ("16.4.2", False), ("17.2.8", True), ("18.1.0", True)],
)
def test_check_version_accepts(version: str, allow_reissue: bool) -> None:
    check_version(v(version), allow_reissue=allow_reissue)


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
