"""Each member's action.yml: the original's interface, inputs only through env, the Linux gate."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import REPO
from teleport_auth.family import MEMBERS
from teleport_auth.family.spec import END_OF_JOB_FOLDER, END_OF_JOB_REF, Member
from teleport_auth.inputs import env_name

SHARED = {"proxy", "token", "certificate-ttl", "anonymous-telemetry", "ca-pins", "disable-env-vars"}
# The originals' interfaces (docs/compatibility.md, the original actions): own inputs, outputs.
ORIGINALS: dict[str, tuple[str, set[str], set[str]]] = {
    "auth": ("action.yml", {"allow-reissue"}, {"identity-file", "ssh-config", "destination-dir"}),
    "k8s": (
        "k8s/action.yml",
        {"kubernetes-cluster"},
        {"destination-dir", "identity-file", "kubeconfig"},
    ),
    "application": (
        "application/action.yml",
        {"app"},
        {"destination-dir", "identity-file", "certificate-file", "key-file"},
    ),
    # The daemon members add the tbot process id (to stop it before the job ends).
    "database-tunnel": (
        "database-tunnel/action.yml",
        {"listen", "timeout-ms", "diag-port", "service", "database", "username"},
        {"database-tunnel-uri", "database-tunnel-port", "diag-addr", "log-path", "tbot-pid"},
    ),
    "application-tunnel": (
        "application-tunnel/action.yml",
        {"listen", "timeout-ms", "diag-port", "app"},
        {"application-tunnel-uri", "application-tunnel-port", "diag-addr", "log-path", "tbot-pid"},
    ),
    "application-proxy": (
        "application-proxy/action.yml",
        {"listen", "timeout-ms", "diag-port"},
        {"application-proxy-uri", "application-proxy-port", "diag-addr", "log-path", "tbot-pid"},
    ),
}
REQUIRED = {
    "proxy",
    "token",
    "kubernetes-cluster",
    "app",
    "listen",
    "service",
    "database",
    "username",
}


def load(member: Member) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / member.folder / "action.yml").read_text())
    return data


def ids(member: Member) -> str:
    return member.key


@pytest.mark.parametrize("member", [m for m in MEMBERS if m.key in ORIGINALS], ids=ids)
def test_same_interface_as_the_original(member: Member) -> None:
    action = load(member)
    path, own, outputs = ORIGINALS[member.key]
    assert Path(REPO / path) == REPO / member.folder / "action.yml"
    assert set(action["inputs"]) == SHARED | own
    for name, spec in action["inputs"].items():
        assert spec["required"] is (name in REQUIRED), name
        assert spec["description"]
    for name, default in (("timeout-ms", "30000"), ("diag-port", "57263")):
        if name in action["inputs"]:
            assert action["inputs"][name]["default"] == default
    # Empty by default, so a TELEPORT_ANONYMOUS_TELEMETRY in the job's env is kept.
    assert action["inputs"]["anonymous-telemetry"]["default"] == ""
    assert set(action["outputs"]) == outputs
    for name, output in action["outputs"].items():
        assert output["value"] == f"${{{{ steps.auth.outputs.{name} }}}}"
        assert output["description"]


@pytest.mark.parametrize("member", MEMBERS, ids=ids)
def test_every_input_reaches_the_step_through_env_only(member: Member) -> None:
    action = load(member)
    steps = action["runs"]["steps"]
    [step] = [s for s in steps if s.get("id") == "auth"]
    for name in action["inputs"]:
        assert step["env"][env_name(name)] == f"${{{{ inputs.{name} }}}}"
    assert step["env"]["TELEPORT_ANONYMOUS_TELEMETRY"] == (
        "${{ inputs.anonymous-telemetry || env.TELEPORT_ANONYMOUS_TELEMETRY }}"
    )
    for each in steps:
        if "uses" in each:
            continue  # the daemon members' end-of-job step (test below)
        # Never an expression inside a script: template injection.
        assert "${{" not in each["run"]
        assert each["shell"] == "bash"
    # One launcher for the family, told which member it runs.
    launcher = (
        '"$GITHUB_ACTION_PATH/src/launch"'
        if not member.folder
        else f'"$GITHUB_ACTION_PATH/../src/launch" {member.key}'
    )
    # exec: the process the runner signals on cancel is the step itself.
    assert step["run"] == f"exec bash {launcher}"


@pytest.mark.parametrize("member", MEMBERS, ids=ids)
def test_daemon_members_end_the_job_with_a_nested_post(member: Member) -> None:
    steps = load(member)["runs"]["steps"]
    nested = [s for s in steps if "uses" in s]
    if member.oneshot:
        assert nested == []
        return
    # Last, after the step that starts tbot (it runs only if that one succeeded); a
    # fixed ref (a nested `uses:` takes no expression); what it needs comes from
    # that step's outputs, as the step sees its own paths (in a container job too).
    assert steps[-1] == {
        "name": "Stop tbot and show its log when the job ends",
        "if": "runner.os == 'Linux'",
        "uses": f"teleport-actions/auth/end-of-job@{END_OF_JOB_REF}",
        "with": {
            "python": "${{ steps.auth.outputs.end-of-job-python }}",
            "script": "${{ steps.auth.outputs.end-of-job-script }}",
            "state": "${{ steps.auth.outputs.end-of-job-state }}",
        },
    }
    assert steps[-2]["id"] == "auth"
    # Not outputs of the action: they are the end-of-job step's business only.
    assert not {"end-of-job-python", "end-of-job-script", "end-of-job-state"} & set(
        load(member)["outputs"]
    )


def test_the_end_of_job_action_is_plain_node_with_a_post() -> None:
    action = yaml.safe_load((REPO / END_OF_JOB_FOLDER / "action.yml").read_text())
    assert action["runs"] == {"using": "node24", "main": "main.js", "post": "post.js"}
    assert set(action["inputs"]) == {"python", "script", "state"}
    # No packages: nothing but Node's own modules is required.
    for name in ("main.js", "post.js"):
        source = (REPO / END_OF_JOB_FOLDER / name).read_text()
        assert set(re.findall(r"require\('([^']+)'\)", source)) <= {"child_process", "crypto", "fs"}
    assert sorted(p.name for p in (REPO / END_OF_JOB_FOLDER).iterdir()) == [
        "action.yml",
        "main.js",
        "post.js",
    ]


@pytest.mark.parametrize("member", MEMBERS, ids=ids)
@pytest.mark.parametrize("runner_os", ["macOS", "Windows"])
def test_non_linux_runners_fail_fast(member: Member, runner_os: str) -> None:
    steps = load(member)["runs"]["steps"]
    gate = steps[0]
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
    assert done.stdout.startswith(f"::error::{member.uses} runs on Linux runners only")
    assert runner_os in done.stdout
    # ...and the real step is skipped there.
    assert steps[1]["if"] == "runner.os == 'Linux'"


def test_checked_in_files_match_the_generator() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gen_actions"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def test_the_generator_notices_a_hand_edit(tmp_path: Path) -> None:
    # A copy of the generator in a scratch tree whose k8s/action.yml was edited.
    scratch = tmp_path / "repo"
    (scratch / "scripts").mkdir(parents=True)
    (scratch / "scripts" / "gen_actions").write_text((REPO / "scripts" / "gen_actions").read_text())
    (scratch / "src").symlink_to(REPO / "src")
    (scratch / "_vendor").symlink_to(REPO / "_vendor")
    for member in MEMBERS:
        target = scratch / member.folder / "action.yml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text((REPO / member.folder / "action.yml").read_text())
    edited = scratch / "k8s" / "action.yml"
    edited.write_text(edited.read_text().replace("required: true", "required: false", 1))
    done = subprocess.run(
        [sys.executable, str(scratch / "scripts" / "gen_actions"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 1
    assert "k8s/action.yml" in done.stderr
