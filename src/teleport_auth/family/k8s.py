"""``teleport-actions/auth/k8s`` (the original ``auth-k8s``): a kubeconfig for kubectl."""

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

KUBECONFIG_NAME = "kubeconfig.yaml"


class Kubernetes(OneShotPlan):
    __slots__ = ("cluster",)

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster

    def outputs(self, destination: Path) -> list[Output]:
        return [
            {
                "type": "kubernetes",
                "destination": directory_destination(destination),
                "roles": [],
                "kubernetes_cluster": self.cluster,
            }
        ]

    def publish(self, inputs: Inputs, destination: Path) -> Published:
        kubeconfig = str(destination / KUBECONFIG_NAME)
        return Published(
            outputs={
                "destination-dir": str(destination),
                "identity-file": str(destination / "identity"),
                "kubeconfig": kubeconfig,
            },
            exports={"KUBECONFIG": kubeconfig},
            rows=(("Kubernetes cluster", self.cluster), ("Kubeconfig", kubeconfig)),
        )


def read(env: Mapping[str, str]) -> Kubernetes:
    return Kubernetes(
        validate_resource_name(
            "kubernetes-cluster",
            raw_input(env, "kubernetes-cluster"),
            "the name of the Kubernetes cluster in Teleport",
        )
    )


MEMBER = Member(
    key="k8s",
    folder="k8s",
    original="teleport-actions/auth-k8s",
    title="Teleport Auth (Kubernetes)",
    description=(
        "Authenticate a GitHub Actions job with Teleport Machine ID (tbot) and write a "
        "kubeconfig, so that kubectl works against a Kubernetes cluster behind Teleport."
    ),
    inputs=(
        InputSpec(
            "kubernetes-cluster",
            "Name of the Kubernetes cluster in Teleport to connect to.",
            required=True,
        ),
    ),
    outputs=(
        OutputSpec("destination-dir", "Directory holding all the files tbot wrote (mode 0700)."),
        OutputSpec("identity-file", "Path to the identity file."),
        OutputSpec(
            "kubeconfig",
            "Path to the kubeconfig for the cluster, for kubectl (also in KUBECONFIG).",
        ),
    ),
    exports=("KUBECONFIG",),
    min_tbot=(16, 0, 0),
    read=read,
)
