"""``teleport-actions/auth``: an identity for tsh, tctl and ssh."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from teleport_auth.family.spec import (
    Entry,
    InputSpec,
    Member,
    OutputSpec,
    Published,
    Version,
    directory_destination,
)
from teleport_auth.inputs import Inputs, raw_input, strict_bool

# The identity output's allow_reissue option appeared in tbot 17.2.8.
ALLOW_REISSUE_MIN_VERSION = (17, 2, 8)


@dataclass(frozen=True)
class Own:
    allow_reissue: bool


def read(env: Mapping[str, str]) -> Own:
    # Strict, as the original's getBooleanInput: a typo here must not pass silently.
    return Own(allow_reissue=strict_bool("allow-reissue", raw_input(env, "allow-reissue")))


def entry(own: Own, destination: Path) -> Entry:
    output: dict[str, object] = {
        "type": "identity",
        "destination": directory_destination(destination),
        "roles": [],
    }
    if own.allow_reissue:
        output["allow_reissue"] = True
    return Entry("outputs", output)


def publish(own: Own, inputs: Inputs, destination: Path) -> Published:
    del own
    identity = str(destination / "identity")
    return Published(
        outputs={
            "identity-file": identity,
            "ssh-config": str(destination / "ssh_config"),
            "destination-dir": str(destination),
        },
        exports={
            "TELEPORT_PROXY": inputs.proxy,
            "TELEPORT_AUTH_SERVER": inputs.proxy,
            "TELEPORT_IDENTITY_FILE": identity,
        },
        rows=(("Identity file", identity),),
    )


def extra_requirements(own: Own) -> tuple[tuple[Version, str], ...]:
    if own.allow_reissue:
        return ((ALLOW_REISSUE_MIN_VERSION, "Input 'allow-reissue'"),)
    return ()


MEMBER = Member[Own](
    key="auth",
    folder="",
    original="teleport-actions/auth",
    title="Teleport Auth (Machine ID)",
    description=(
        "Authenticate a GitHub Actions job with Teleport using Machine ID (tbot) and GitHub's "
        "OIDC join, so that tsh and tctl work in the following steps."
    ),
    inputs=(
        InputSpec(
            "allow-reissue",
            "true: the identity may be used to reissue certificates (sets allow_reissue on the "
            "identity output; needs tbot 17.2.8 or newer).",
            default="false",
        ),
    ),
    outputs=(
        OutputSpec(
            "identity-file",
            "Path to the identity file, for `tsh -i` / `tctl -i` (also in TELEPORT_IDENTITY_FILE).",
        ),
        OutputSpec("ssh-config", "Path to the generated OpenSSH configuration, for `ssh -F`."),
        OutputSpec("destination-dir", "Directory holding all the files tbot wrote (mode 0700)."),
    ),
    exports=("TELEPORT_PROXY", "TELEPORT_AUTH_SERVER", "TELEPORT_IDENTITY_FILE"),
    # `tbot start` with config v2 exists since tbot 14 (the original's v2 line asks for 16).
    min_tbot=(14, 0, 0),
    read=read,
    entry=entry,
    publish=publish,
    extra_requirements=extra_requirements,
)
