"""``teleport-actions/auth/application`` (the original ``auth-application``): app credentials."""

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
    directory_destination,
)
from teleport_auth.inputs import Inputs, raw_input, validate_resource_name

if TYPE_CHECKING:
    from teleport_auth.tbot_schema import Output


class Application(OneShotPlan):
    __slots__ = ("app",)

    def __init__(self, app: str) -> None:
        self.app = app

    def outputs(self, destination: Path) -> list[Output]:
        return [
            {
                "type": "application",
                "destination": directory_destination(destination),
                "roles": [],
                "app_name": self.app,
            }
        ]

    def publish(self, inputs: Inputs, destination: Path) -> Published:
        certificate = str(destination / "tlscert")
        key = str(destination / "key")
        return Published(
            outputs={
                "destination-dir": str(destination),
                "identity-file": str(destination / "identity"),
                "certificate-file": certificate,
                "key-file": key,
            },
            rows=(
                ("Application", self.app),
                ("Certificate file", certificate),
                ("Key file", key),
            ),
        )


def read(env: Mapping[str, str]) -> Application:
    return Application(
        validate_resource_name(
            "app", raw_input(env, "app"), "the name of the application in Teleport"
        )
    )


MEMBER = Member(
    key="application",
    folder="application",
    original="teleport-actions/auth-application",
    title="Teleport Auth (Application Access)",
    description=(
        "Authenticate a GitHub Actions job with Teleport Machine ID (tbot) and write a client "
        "certificate and key for an application behind Teleport."
    ),
    inputs=(
        InputSpec(
            "app",
            "Name of the application in Teleport to generate credentials for.",
            required=True,
        ),
    ),
    outputs=(
        OutputSpec("destination-dir", "Directory holding all the files tbot wrote (mode 0700)."),
        OutputSpec("identity-file", "Path to the identity file."),
        OutputSpec("certificate-file", "Path to the application's TLS client certificate."),
        OutputSpec("key-file", "Path to the private key of that certificate."),
    ),
    exports=(),
    min_tbot=(16, 0, 0),
    read=read,
)
