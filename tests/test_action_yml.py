"""action.yml itself: the original's interface, inputs only through env, the non-Linux gate."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest
import yaml

from conftest import REPO
from teleport_auth.inputs import ENV

ACTION: dict[str, Any] = yaml.safe_load((REPO / "action.yml").read_text())
STEPS: list[dict[str, Any]] = ACTION["runs"]["steps"]


def test_same_interface_as_the_original() -> None:
    assert set(ACTION["inputs"]) == {
        "proxy",
        "token",
        "certificate-ttl",
        "anonymous-telemetry",
        "ca-pins",
        "disable-env-vars",
        "allow-reissue",
    }
    assert ACTION["inputs"]["proxy"]["required"] is True
    assert ACTION["inputs"]["token"]["required"] is True
    # Empty by default, so a TELEPORT_ANONYMOUS_TELEMETRY in the job's env is kept.
    assert ACTION["inputs"]["anonymous-telemetry"]["default"] == ""
    assert set(ACTION["outputs"]) == {"identity-file", "ssh-config", "destination-dir"}
    for name, output in ACTION["outputs"].items():
        assert output["value"] == f"${{{{ steps.auth.outputs.{name} }}}}"
    for spec in [*ACTION["inputs"].values(), *ACTION["outputs"].values()]:
        assert spec["description"]


def test_every_input_reaches_the_step_through_env_only() -> None:
    [step] = [s for s in STEPS if s.get("id") == "auth"]
    for name, variable in ENV.items():
        assert step["env"][variable] == f"${{{{ inputs.{name} }}}}"
    assert step["env"]["TELEPORT_ANONYMOUS_TELEMETRY"] == (
        "${{ inputs.anonymous-telemetry || env.TELEPORT_ANONYMOUS_TELEMETRY }}"
    )
    for each in STEPS:
        # Never an expression inside a script: template injection.
        assert "${{" not in each["run"]
        assert each["shell"] == "bash"


@pytest.mark.parametrize("runner_os", ["macOS", "Windows"])
def test_non_linux_runners_fail_fast(runner_os: str) -> None:
    gate = STEPS[0]
    assert gate["if"] == "runner.os != 'Linux'"
    assert re.fullmatch(r"\$\{\{ runner\.os \}\}", gate["env"]["THIS_RUNNER_OS"])
    done = subprocess.run(
        ["bash", "-c", gate["run"]],
        env={"THIS_RUNNER_OS": runner_os, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stdout.startswith("::error::teleport-actions/auth runs on Linux runners only")
    assert runner_os in done.stdout
    # ...and the real step is skipped there.
    assert STEPS[1]["if"] == "runner.os == 'Linux'"
