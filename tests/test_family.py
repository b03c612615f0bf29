"""Every member of the family, table-driven: its config against the original sibling's,
its inputs, and the whole step with the stand-in (outputs, variables, files, summary)."""

from __future__ import annotations

import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import (
    TBOT_APPLICATION_FILES,
    TBOT_IDENTITY_FILES,
    TBOT_KUBERNETES_FILES,
    TBOT_SSH_FILES,
    Job,
)
from step_helpers import errors, run_step, warnings
from teleport_auth.config import build_config, to_file_text
from teleport_auth.family import MEMBERS, member
from teleport_auth.inputs import InputError, Inputs, env_name

pytestmark = pytest.mark.step

DEST = Path("/runner/tmp/dest")
PIN = "sha256:" + "0f" * 32


def base(outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """The originals' shared base config for proxy tele.example.com:443, token t
    (docs/compatibility.md, the original actions)."""
    return {
        "version": "v2",
        "proxy_server": "tele.example.com:443",
        "oneshot": True,
        "onboarding": {"join_method": "github", "token": "t", "ca_pins": []},
        "storage": {"type": "memory"},
        "outputs": outputs,
        "services": [],
    }


DIRECTORY = {"type": "directory", "symlinks": "try-secure", "path": str(DEST)}


@dataclass
class Case:
    """One member with the inputs of a run, and what the original sibling does with them."""

    key: str
    own_inputs: dict[str, str]
    # The original's config for these inputs (its TypeScript source; docs/compatibility.md).
    original_config: dict[str, Any]
    # Output name -> file name inside destination-dir ("" for the directory itself).
    outputs: dict[str, str]
    # Exported variable -> output whose value it carries (or the proxy).
    exports: dict[str, str]
    files: frozenset[str]
    summary_rows: list[str] = field(default_factory=list)

    @property
    def argv(self) -> list[str]:
        return [] if self.key == "auth" else [self.key]


IDENTITY = TBOT_IDENTITY_FILES
SSH = TBOT_SSH_FILES

CASES = [
    Case(
        key="auth",
        own_inputs={},
        original_config=base([{"type": "identity", "destination": DIRECTORY, "roles": []}]),
        outputs={"identity-file": "identity", "ssh-config": "ssh_config", "destination-dir": ""},
        exports={
            "TELEPORT_PROXY": "proxy",
            "TELEPORT_AUTH_SERVER": "proxy",
            "TELEPORT_IDENTITY_FILE": "identity-file",
        },
        files=IDENTITY | SSH,
        summary_rows=["| Identity file | `{dir}/identity` |"],
    ),
    Case(
        key="k8s",
        own_inputs={"kubernetes-cluster": "prod-cluster"},
        original_config=base(
            [
                {
                    "type": "kubernetes",
                    "destination": DIRECTORY,
                    "roles": [],
                    "kubernetes_cluster": "prod-cluster",
                }
            ]
        ),
        outputs={
            "destination-dir": "",
            "identity-file": "identity",
            "kubeconfig": "kubeconfig.yaml",
        },
        exports={"KUBECONFIG": "kubeconfig"},
        files=TBOT_KUBERNETES_FILES,
        summary_rows=[
            "| Kubernetes cluster | `prod-cluster` |",
            "| Kubeconfig | `{dir}/kubeconfig.yaml` |",
        ],
    ),
    Case(
        key="application",
        own_inputs={"app": "grafana"},
        original_config=base(
            [
                {
                    "type": "application",
                    "destination": DIRECTORY,
                    "roles": [],
                    "app_name": "grafana",
                }
            ]
        ),
        outputs={
            "destination-dir": "",
            "identity-file": "identity",
            "certificate-file": "tlscert",
            "key-file": "key",
        },
        exports={},
        files=TBOT_APPLICATION_FILES,
        summary_rows=[
            "| Application | `grafana` |",
            "| Certificate file | `{dir}/tlscert` |",
            "| Key file | `{dir}/key` |",
        ],
    ),
]


def by_key(case: Case) -> str:
    return case.key


def shared(**overrides: Any) -> Inputs:
    values: dict[str, Any] = {
        "proxy": "tele.example.com:443",
        "token": "t",
        "certificate_ttl": "",
        "ca_pins": (),
        "disable_env_vars": False,
    }
    return Inputs(**(values | overrides))


def own_env(case: Case) -> dict[str, str]:
    return {env_name(name): value for name, value in case.own_inputs.items()}


def test_every_member_has_a_case() -> None:
    assert {m.key for m in MEMBERS if m.oneshot} == {case.key for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=by_key)
def test_config_means_what_the_originals_does(case: Case) -> None:
    found = member(case.key)
    assert found is not None
    own = found.read(own_env(case))
    config = build_config(shared(), own, DEST, oneshot=found.oneshot)
    # Compared as tbot reads it: the YAML we write, parsed.
    assert yaml.safe_load(to_file_text(config)) == case.original_config


@pytest.mark.parametrize("case", CASES, ids=by_key)
def test_optional_shared_inputs_add_what_the_original_adds(case: Case) -> None:
    found = member(case.key)
    assert found is not None
    own = found.read(own_env(case))
    config = build_config(
        shared(certificate_ttl="1h30m", ca_pins=(PIN,)), own, DEST, oneshot=found.oneshot
    )
    expected = yaml.safe_load(yaml.safe_dump(case.original_config))
    expected["certificate_ttl"] = "1h30m"
    expected["onboarding"]["ca_pins"] = [PIN]
    assert yaml.safe_load(to_file_text(config)) == expected


def test_allow_reissue_only_when_asked() -> None:
    from teleport_auth.family import auth

    assert auth.Auth(allow_reissue=True).outputs(DEST)[0].get("allow_reissue") is True
    assert "allow_reissue" not in auth.Auth(allow_reissue=False).outputs(DEST)[0]


RESOURCE_INPUTS = [("k8s", "kubernetes-cluster"), ("application", "app")]


@pytest.mark.parametrize(("key", "name"), RESOURCE_INPUTS)
@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "is required"),
        ("   ", "is required"),
        ("two words", "without whitespace or control characters"),
        ("tab\there", "without whitespace or control characters"),
        ("bell\x07", "without whitespace or control characters"),
        ("nl\ninside", "without whitespace or control characters"),
    ],
)
def test_resource_name_inputs_rejected(key: str, name: str, value: str, message: str) -> None:
    found = member(key)
    assert found is not None
    with pytest.raises(InputError) as caught:
        found.read({env_name(name): value})
    assert f"Input '{name}'" in caught.value.message
    assert message in caught.value.message


@pytest.mark.parametrize(("key", "name"), RESOURCE_INPUTS)
@pytest.mark.parametrize("value", ["prod", " prod-eu.1 \n", "Ünïcode_näme", "a/b:c@d"])
def test_resource_name_inputs_accepted(key: str, name: str, value: str) -> None:
    found = member(key)
    assert found is not None
    own = found.read({env_name(name): value})
    entries: list[Mapping[str, object]] = [*own.outputs(DEST), *own.services()]
    [entry] = entries
    assert value.strip() in entry.values()


# --- the whole step, in-process, with the stand-in ---------------------------------


def run_member(job: Job, case: Case, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    job.env |= own_env(case)
    return run_step(capsys, case.argv)


@pytest.mark.parametrize("case", CASES, ids=by_key)
def test_step_publishes_what_the_original_publishes(
    job: Job, case: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    code, log = run_member(job, case, capsys)
    assert code == 0, log
    assert not errors(log)
    destination = Path(job.outputs["destination-dir"])
    assert destination.parent == Path(job.env["RUNNER_TEMP"])
    assert job.outputs == {
        name: str(destination / file) if file else str(destination)
        for name, file in case.outputs.items()
    }
    values = job.outputs | {"proxy": "tele.example.com:443"}
    assert job.exported == {name: values[source] for name, source in case.exports.items()}
    # Private files: everything 0600 in a 0700 directory, the member's own files included.
    assert stat.S_IMODE(destination.stat().st_mode) == 0o700
    assert {p.name for p in destination.iterdir()} == case.files
    for path in destination.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    # Only the identity directory is left: the config (it held the token) is gone.
    assert job.runner_temp_entries() == [destination]
    found = member(case.key)
    assert found is not None
    assert f"### {found.title}" in job.summary
    for row in case.summary_rows:
        assert row.format(dir=destination) in job.summary
    # tbot ran with this member's helper name, exactly as the original reports it.
    [start] = [r for r in job.records if "start" in r["argv"]]
    assert start["env"]["_TBOT_TELEMETRY_HELPER"] == found.helper
    assert start["config"]["outputs"][0]["type"] == case.original_config["outputs"][0]["type"]
    assert "tbot start" in log


@pytest.mark.parametrize("case", CASES, ids=by_key)
def test_disable_env_vars_exports_nothing(
    job: Job, case: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    job.env["INPUT_DISABLE_ENV_VARS"] = " TRUE "
    code, log = run_member(job, case, capsys)
    assert code == 0, log
    assert job.exported == {}
    assert set(job.outputs) == set(case.outputs)


@pytest.mark.parametrize("case", CASES, ids=by_key)
def test_odd_disable_env_vars_warns_and_is_off(
    job: Job, case: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    job.env["INPUT_DISABLE_ENV_VARS"] = "yes"
    code, log = run_member(job, case, capsys)
    assert code == 0, log
    [warning] = warnings(log)
    assert "'disable-env-vars'" in warning
    assert set(job.exported) == set(case.exports)


@pytest.mark.parametrize("case", [c for c in CASES if not c.exports], ids=by_key)
def test_a_member_that_exports_nothing_needs_no_github_env(
    job: Job, case: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    del job.env["GITHUB_ENV"]
    code, log = run_member(job, case, capsys)
    assert code == 0, log


@pytest.mark.parametrize("case", [c for c in CASES if c.key != "auth"], ids=by_key)
def test_member_needs_tbot_16(job: Job, case: Case, capsys: pytest.CaptureFixture[str]) -> None:
    job.env["STANDIN_TBOT_VERSION"] = "15.4.22"
    code, log = run_member(job, case, capsys)
    assert code == 1
    found = member(case.key)
    assert found is not None
    [error] = errors(log)
    assert f"{found.uses} needs tbot 16.0.0 or newer; the installed tbot is 15.4.22" in error
    assert not job.started_tbot
    assert job.outputs == {}


@pytest.mark.parametrize(("key", "name"), RESOURCE_INPUTS)
def test_missing_own_input_fails_before_tbot(
    job: Job, key: str, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, log = run_step(capsys, [key])
    assert code == 1
    [error] = errors(log)
    assert f"Input '{name}' is required" in error
    assert job.records == []


def test_unknown_member_is_one_error(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    code, log = run_step(capsys, ["kube"])
    assert code == 1
    assert errors(log) == ["::error::teleport-actions/auth has no member called 'kube'."]
    assert job.records == []
