"""The tbot configuration: the same meaning as the original actions', written privately."""

from __future__ import annotations

import copy
import json
import os
import re
import uuid
from pathlib import Path
from typing import Any

from teleport_auth.family.spec import Entry
from teleport_auth.gha import ActionFailure
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
    """The config as tbot reads it: JSON syntax, which is YAML (1.2), all ASCII.

    Every string is double-quoted and escaped, so nothing in an input can change
    the document's structure. Every non-ASCII character is escaped too: Go's
    yaml.v3 (tbot's parser) refuses U+FFFE and U+FFFF written raw, and can
    misread a raw U+FEFF (a BOM pasted into a value) depending on where it falls
    in the file, but reads every escape back exactly. Beyond U+FFFF the escape
    is YAML's ``\\UXXXXXXXX``: yaml.v3 refuses the surrogate pairs JSON would use.
    Control characters are escaped by json or refused by the input checks, and
    text that is not UTF-8 (lone surrogates) cannot be written at all.
    """
    text = json.dumps(config, indent=2, ensure_ascii=False)
    if _SURROGATE.search(text):
        raise ActionFailure(
            "The tbot config would hold text that is not UTF-8 (from RUNNER_TEMP or an input)."
        )
    # Outside strings json writes only ASCII, and inside them a raw character is
    # never part of an escape: each non-ASCII character can be replaced in place.
    return _NON_ASCII.sub(_escape, text) + "\n"


# DEL (0x7f) too: YAML does not take it raw either.
_NON_ASCII = re.compile(r"[^\x00-\x7e]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


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
