"""The tbot configuration: the same meaning as the original actions', written privately."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from teleport_auth.gha import ActionFailure, describe_os_error
from teleport_auth.inputs import Inputs
from teleport_auth.uuids import uuid4

if TYPE_CHECKING:
    from teleport_auth.family.spec import Plan
    from teleport_auth.tbot_schema import BotConfig

CONFIG_NAME = "bot-config.yaml"
REDACTED = "<redacted>"


def build_config(inputs: Inputs, plan: Plan, destination: Path, *, oneshot: bool) -> BotConfig:
    """The originals' base config (same keys, same order) plus the member's entry."""
    config: BotConfig = {
        "version": "v2",
        "proxy_server": inputs.proxy,
        "oneshot": oneshot,
        "onboarding": {
            "join_method": "github",
            "token": inputs.token,
            "ca_pins": list(inputs.ca_pins),
        },
        "storage": {"type": "memory"},
        "outputs": plan.outputs(destination),
        "services": plan.services(),
    }
    if inputs.certificate_ttl:
        config["certificate_ttl"] = inputs.certificate_ttl
    return config


def redacted(config: BotConfig) -> BotConfig:
    """A copy fit for a log: the join token replaced."""
    return {**config, "onboarding": {**config["onboarding"], "token": REDACTED}}


def to_yaml(config: BotConfig) -> str:
    """The config as block YAML, for the debug log (PyYAML is loaded only then)."""
    import yaml  # noqa: PLC0415 - the debug log is the only reader of this form

    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)


def to_file_text(config: BotConfig) -> str:
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
    path = parent / uuid4()
    path.mkdir(mode=0o700)
    path.chmod(0o700)
    return path


def write_config(config: BotConfig, directory: Path) -> Path:
    """Write the config (it holds the token) as 0600, refusing to follow or reuse a file."""
    path = directory / CONFIG_NAME
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(to_file_text(config))
    return path


def make_private_dir(parent: Path) -> Path:
    """``private_dir``, its failure named for the user."""
    try:
        return private_dir(parent)
    except OSError as exc:
        raise ActionFailure(
            f"Could not create a private directory in RUNNER_TEMP ({parent}): "
            f"{describe_os_error(exc)}."
        ) from None


def write_private_config(config: BotConfig, directory: Path) -> Path:
    """``write_config``, its failure named for the user."""
    try:
        return write_config(config, directory)
    except OSError as exc:
        raise ActionFailure(
            f"Could not write the tbot configuration in RUNNER_TEMP ({directory}): "
            f"{describe_os_error(exc)}."
        ) from None


def remove_private_dir(directory: Path) -> None:
    """Remove the config's directory (it held the token): its one file, then itself."""
    try:
        for entry in os.scandir(directory):
            os.unlink(entry.path)
        os.rmdir(directory)
    except FileNotFoundError:
        pass
    except OSError:
        # Something unexpected in there: the general tool, loaded only then.
        import shutil  # noqa: PLC0415

        shutil.rmtree(directory, ignore_errors=True)
