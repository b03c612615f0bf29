"""The tbot configuration: the same meaning as the original actions', written privately."""

from __future__ import annotations

import copy
import json
import os
import uuid
from pathlib import Path
from typing import Any

from teleport_auth.family.spec import Entry
from teleport_auth.inputs import Inputs

CONFIG_NAME = "bot-config.yaml"
REDACTED = "<redacted>"


def build_config(inputs: Inputs, entry: Entry, *, oneshot: bool = True) -> dict[str, Any]:
    """The originals' base config (same keys, same order) plus the member's one entry."""
    config: dict[str, Any] = {
        "version": "v2",
        "proxy_server": inputs.proxy,
        "oneshot": oneshot,
        "onboarding": {
            "join_method": "github",
            "token": inputs.token,
            "ca_pins": list(inputs.ca_pins),
        },
        "storage": {"type": "memory"},
        "outputs": [],
        "services": [],
    }
    config[entry.section].append(entry.value)
    if inputs.certificate_ttl:
        config["certificate_ttl"] = inputs.certificate_ttl
    return config


def redacted(config: dict[str, Any]) -> dict[str, Any]:
    """A copy fit for a log: the join token replaced."""
    shown = copy.deepcopy(config)
    if "token" in shown.get("onboarding", {}):
        shown["onboarding"]["token"] = REDACTED
    return shown


def to_yaml(config: dict[str, Any]) -> str:
    """The config as block YAML, for the debug log (PyYAML is loaded only then)."""
    import yaml  # noqa: PLC0415 - the debug log is the only reader of this form

    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)


def to_file_text(config: dict[str, Any]) -> str:
    """The config as tbot reads it: JSON, which is YAML (1.2), so no YAML library is needed.

    Every string double-quoted and escaped, so nothing in an input can change the
    document's structure. UTF-8 rather than ``\\u`` escapes: tbot's YAML parser
    refuses the surrogate-pair escapes JSON uses for characters beyond U+FFFF.
    (Control characters, which YAML only takes escaped, are escaped by json or
    refused by the input checks.)
    """
    return json.dumps(config, indent=2, ensure_ascii=False) + "\n"


def private_dir(parent: Path) -> Path:
    """A fresh ``parent/<uuid>`` only this user can enter, whatever the umask."""
    path = parent / str(uuid.uuid4())
    path.mkdir(mode=0o700)
    path.chmod(0o700)
    return path


def write_config(config: dict[str, Any], directory: Path) -> Path:
    """Write the config (it holds the token) as 0600, refusing to follow or reuse a file."""
    path = directory / CONFIG_NAME
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(to_file_text(config))
    return path
