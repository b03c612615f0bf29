"""``teleport-actions/setup``, stood in for by ``python3 scripts/dev act``.

It checks the inputs as the original does (its ``getInputs``, same messages,
https://github.com/teleport-actions/setup), then installs and downloads
nothing: it puts the tbot this run uses (the stand-in, or ``--tbot PATH``)
first on PATH and says what it stood in for. With the stand-in, a version the
workflow names becomes the version the stand-in reports, as the original would
have installed that tbot. Standard library only: the runner's python3 runs it.

``run.json`` beside this file (written by ``scripts/dev act`` for each run)
says which tbot that is: ``{"bin": DIR, "tbot": TEXT, "standin": BOOL}``.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

# The original's check, which @actions/core's semver would also accept.
VERSION = re.compile(
    r"([0-9]+)\.([0-9]+)\.([0-9]+)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+)?\Z",
    re.IGNORECASE,
)
# @actions/core's getBooleanInput: YAML 1.2 core schema booleans only.
TRUE, FALSE = ("true", "True", "TRUE"), ("false", "False", "FALSE")


class SetupError(Exception):
    """The original would fail with this message (core.setFailed)."""


def get_input(env: Mapping[str, str], name: str) -> str:
    # core.getInput trims surrounding whitespace.
    return env.get(f"INPUT_{name.upper()}", "").strip()


def get_boolean(env: Mapping[str, str], name: str) -> bool:
    value = get_input(env, name)
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise SetupError(
        f'Input does not meet YAML 1.2 "Core Schema" specification: {name}\n'
        "Support boolean input list: `true | True | TRUE | false | False | FALSE`"
    )


def check_inputs(env: Mapping[str, str]) -> tuple[str, bool, str]:
    """version, enterprise and proxy, refused as the original refuses them."""
    version = get_input(env, "version")
    if version == "":
        raise SetupError("'version' input must be non-empty")
    enterprise = get_boolean(env, "enterprise")
    proxy = get_input(env, "proxy")
    if version != "auto":
        if version.startswith("v"):
            raise SetupError("'version' input should not be prefixed with 'v'")
        if not VERSION.match(version):
            raise SetupError(
                "incorrect 'version' specified, it should include all parts of the version "
                "e.g 11.0.1 or be set to 'auto'"
            )
    elif proxy == "":
        raise SetupError("'proxy' input must be non-empty when 'version' is set to 'auto'")
    get_boolean(env, "cache")
    return version, enterprise, proxy


def _append(path: str | None, line: str) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def run(env: Mapping[str, str], here: Path) -> list[str]:
    """Do what the stand-in does; returns the lines it prints."""
    version, enterprise, proxy = check_inputs(env)
    used = json.loads((here / "run.json").read_text(encoding="utf-8"))
    _append(env.get("GITHUB_OUTPUT"), "cache-hit=false")
    _append(env.get("GITHUB_PATH"), used["bin"])
    tool = "teleport-ent" if enterprise else "teleport"
    asked = f"{tool} {version}" if version != "auto" else f"{tool} at the version {proxy} runs"
    lines = [
        "teleport-actions/setup, stood in for by python3 scripts/dev act: "
        "nothing installed, nothing downloaded.",
        f"The original would install {asked} (teleport, tbot, tctl, tsh). Here only tbot "
        f"is provided, first on PATH: {used['tbot']}.",
    ]
    if not used["standin"]:
        lines.append("That tbot reports its own version, whatever this step was asked for.")
    elif version == "auto":
        lines.append(f"version auto: the stand-in asks {proxy} nothing and keeps its version.")
    else:
        # The later steps' tbot is the version the workflow asked for, as with the original.
        _append(env.get("GITHUB_ENV"), f"STANDIN_TBOT_VERSION={version}")
        if enterprise:
            _append(env.get("GITHUB_ENV"), "STANDIN_TBOT_EDITION=enterprise")
        lines.append(f"The stand-in reports version {version}, as asked.")
    return lines


def main() -> int:
    try:
        lines = run(os.environ, Path(__file__).resolve().parent)
    except SetupError as exc:
        message = str(exc).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        print(f"::error::{message}", flush=True)
        return 1
    print("\n".join(lines), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
