"""``teleport-actions/auth``: an identity for tsh, tctl and ssh."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from teleport_auth.family.spec import (
    InputSpec,
    Member,
    OneShotPlan,
    OutputSpec,
    Published,
    Requirement,
    directory_destination,
)
from teleport_auth.inputs import Inputs, raw_input, strict_bool

if TYPE_CHECKING:
    from teleport_auth.tbot_schema import IdentityOutput, Output

# The identity output's allow_reissue option appeared in tbot 17.2.8.
ALLOW_REISSUE_MIN_VERSION = (17, 2, 8)


class Auth(OneShotPlan):
    __slots__ = ("allow_reissue",)

    def __init__(self, allow_reissue: bool) -> None:
        self.allow_reissue = allow_reissue

    def outputs(self, destination: Path) -> list[Output]:
        output: IdentityOutput = {
            "type": "identity",
            "destination": directory_destination(destination),
            "roles": [],
        }
        if self.allow_reissue:
            output["allow_reissue"] = True
        return [output]

    def publish(self, inputs: Inputs, destination: Path) -> Published:
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

    def requirements(self) -> tuple[Requirement, ...]:
        if self.allow_reissue:
            return ((ALLOW_REISSUE_MIN_VERSION, "Input 'allow-reissue'"),)
        return ()


def read(env: Mapping[str, str]) -> Auth:
    # Strict, as the original's getBooleanInput: a typo here must not pass silently.
    return Auth(allow_reissue=strict_bool("allow-reissue", raw_input(env, "allow-reissue")))


MEMBER = Member(
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
)
