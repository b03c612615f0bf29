"""``python3 scripts/dev act REPO``: a user's workflow through act, with this checkout's actions.

End to end against a throwaway repository whose workflow uses the action by
name (``teleport-actions/auth@v1``, ``.../k8s@v1``), run from another
directory; plus the parts that need no act (workflow scan, the slim view).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from act_local.cli import main
from act_local.view import LINKED, ViewError, make_view
from act_local.workflows import scan, workflow_files
from conftest import gone_within
from echo_server import free_port
from standin.install import install_standin
from teleport_auth import HELPER_VERSION
from teleport_auth.family import MEMBERS
from throwaway_repo import CLUSTER, TOKEN, make_repo

REPO = Path(__file__).resolve().parent.parent


@dataclass
class JobReport:
    outcome: str
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)


def parse_summary(out: str) -> dict[str, JobReport]:
    """The closing summary, per job: outcome, our steps (uses, outputs), events."""
    _, sep, tail = out.partition("Summary (python3 scripts/dev act)")
    assert sep, out
    jobs: dict[str, JobReport] = {}
    job = JobReport("")
    step: dict[str, Any] = {}
    event: dict[str, Any] = {}
    for line in tail.splitlines():
        if m := re.fullmatch(r"Job (\S+): (.+)", line):
            job = jobs[m[1]] = JobReport(m[2])
        elif m := re.fullmatch(r"  step (\S+) \(.*\): uses (\S+)", line):
            step = job.steps[m[1]] = {"uses": m[2], "outputs": {}}
        elif m := re.fullmatch(r"    output (\S+) = (.*)", line):
            step["outputs"][m[1]] = m[2]
        elif m := re.fullmatch(r"    event (\S+) \(helper (\S+)\)", line):
            event = {"event": m[1], "helper": m[2], "props": {}}
            job.events.append(event)
        elif m := re.fullmatch(r"      (\S+): (.*)", line):
            event["props"][m[1]] = m[2]
    return jobs


def dev_act(
    *args: str, cwd: Path, tmp_path: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python3 scripts/dev act ARGS`` from ``cwd``, bounded, act's cache kept in tmp."""
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "dev"), "act", *args],
        cwd=cwd,
        env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "act-cache"), **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def expected_props(helper: str, version: str = "16.4.2", **counts: int) -> dict[str, str]:
    """Every property of a tbot.start event, as the summary prints them."""
    props = {
        "tbot.run_mode": "daemon" if version == "18.6.4" else "one-shot",
        "tbot.version": version,
        "tbot.join_type": "github",
        "tbot.helper": helper,
        "tbot.helper_version": HELPER_VERSION,
    }
    for kind in ("other", "database", "kubernetes", "application"):
        props[f"tbot.destinations_{kind}"] = str(counts.get(kind, 0))
    return props


@pytest.mark.act
def test_runs_a_users_workflow_from_another_directory(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "their-repo")
    bundle = REPO / "_vendor" / "BUNDLE"
    bundle_mtime = bundle.stat().st_mtime_ns

    done = dev_act(str(repo), cwd=tmp_path / "elsewhere", tmp_path=tmp_path)

    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    job = parse_summary(out)["ci/deploy"]
    assert job.outcome == "succeeded"
    auth, kube = job.steps["auth"], job.steps["kube"]
    assert auth["uses"] == "teleport-actions/auth@v1"
    assert kube["uses"] == "teleport-actions/auth/k8s@v1"
    destination = auth["outputs"]["destination-dir"]
    assert auth["outputs"] == {
        "identity-file": f"{destination}/identity",
        "ssh-config": f"{destination}/ssh_config",
        "destination-dir": destination,
    }
    kube_dir = kube["outputs"]["destination-dir"]
    assert kube["outputs"] == {
        "destination-dir": kube_dir,
        "identity-file": f"{kube_dir}/identity",
        "kubeconfig": f"{kube_dir}/kubeconfig.yaml",
    }
    # A later step of the workflow read what both steps exported.
    assert f"identity file read: {auth['outputs']['identity-file']}" in out
    assert re.search(rf"kube context: \S*{CLUSTER}", out)
    # Each step's one event, every property shown, traced to the job that sent it.
    assert [(e["event"], e["helper"]) for e in job.events] == [
        ("tbot.start", "gha:teleport-actions/auth"),
        ("tbot.start", "gha:teleport-actions/auth-k8s"),
    ]
    first, second = (
        {k: v for k, v in e["props"].items() if k.startswith("tbot.")} for e in job.events
    )
    assert first == expected_props("gha:teleport-actions/auth", other=1)
    assert second == expected_props("gha:teleport-actions/auth-k8s", kubernetes=1)
    assert "2 event(s) in all" in out
    # Nothing rebuilt: the checkout's bundle is used as it is.
    assert "building its runtime packages" not in out
    assert bundle.stat().st_mtime_ns == bundle_mtime
    # The token is masked (act's JSON log carries it unmasked beside the message).
    assert TOKEN not in out + done.stderr
    # ::debug:: lines only with --verbose.
    assert "::debug::" not in out


@pytest.mark.act
def test_verbose_shows_debug_lines(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "their-repo")
    done = dev_act(str(repo), "--verbose", "-j", "deploy", cwd=tmp_path, tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    debug = [line for line in done.stdout.splitlines() if "::debug::" in line]
    assert any("Anonymous telemetry event" in line for line in debug), done.stdout
    # RUNNER_DEBUG=1, as GitHub's debug logging sets it: tbot runs with --debug.
    assert "Debug logging has been enabled" in done.stdout
    # act's own debug chatter stays out.
    assert "Loading workflows" not in done.stdout
    assert parse_summary(done.stdout)["ci/deploy"].outcome == "succeeded"


@pytest.mark.act
def test_failed_job_and_workflow_path_relative_to_the_repository(tmp_path: Path) -> None:
    broken = """\
name: broken
on: push
jobs:
  refuse:
    runs-on: [self-hosted, linux]
    steps:
      - uses: "teleport-actions/auth@main"
        with:
          proxy: tele.example.com:443
          token: ""
"""
    repo = make_repo(tmp_path / "their-repo", {"ci/broken.yml": broken})
    done = dev_act(str(repo), "-W", "ci/broken.yml", cwd=tmp_path, tmp_path=tmp_path)
    assert done.returncode != 0
    assert "::error::Input 'token' is required" in done.stdout
    job = parse_summary(done.stdout)["broken/refuse"]
    assert job.outcome == "FAILED"
    assert job.steps["0"]["uses"] == "teleport-actions/auth@main"
    assert job.events == []


@pytest.mark.act
def test_tbot_option_puts_that_tbot_on_path(tmp_path: Path) -> None:
    standin = install_standin(tmp_path / "standin")
    real = tmp_path / "real" / "tbot"
    real.parent.mkdir()
    real.write_text(f'#!/bin/sh\nSTANDIN_TBOT_VERSION=17.1.0 exec "{standin}" "$@"\n')
    real.chmod(0o755)
    repo = make_repo(tmp_path / "their-repo")
    done = dev_act(str(repo), "--tbot", str(real), cwd=tmp_path, tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"tbot: {real}" in done.stdout
    assert "Using tbot 17.1.0 (" in done.stdout
    events = parse_summary(done.stdout)["ci/deploy"].events
    assert [e["props"]["tbot.version"] for e in events] == ["17.1.0", "17.1.0"]


@pytest.mark.act
def test_daemon_member_gets_its_tbot_version_and_is_stopped_after(tmp_path: Path) -> None:
    workflow = f"""\
name: tunnel
on: push
jobs:
  db:
    runs-on: ubuntu-latest
    steps:
      - id: tunnel
        uses: teleport-actions/auth/database-tunnel@v1
        with:
          proxy: tele.example.com:443
          token: {TOKEN}
          listen: tcp://127.0.0.1:{free_port()}
          diag-port: "{free_port()}"
          service: pg
          database: app
          username: ci
          anonymous-telemetry: true
      # A second daemon in the same job: each has its own end of the job.
      - id: apps
        uses: teleport-actions/auth/application-proxy@v1
        with:
          proxy: tele.example.com:443
          token: {TOKEN}
          listen: tcp://127.0.0.1:{free_port()}
          diag-port: "{free_port()}"
"""
    repo = make_repo(tmp_path / "their-repo", {".github/workflows/tunnel.yml": workflow})
    done = dev_act(str(repo), cwd=tmp_path, tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    job = parse_summary(done.stdout)["tunnel/db"]
    pid = int(job.steps["tunnel"]["outputs"]["tbot-pid"])
    apps_pid = int(job.steps["apps"]["outputs"]["tbot-pid"])
    # The workflow left both running: each member's end-of-job step (its nested
    # action's post, mapped to this checkout too) stopped its own tbot and showed
    # its log, the later step's first (posts run in reverse order).
    said = [
        line.partition("]   | ")[2]
        for line in done.stdout.splitlines()
        if ": Stopped tbot (pid " in line
    ]
    assert [s.partition(" after ")[0] for s in said] == [
        f"teleport-actions/auth/application-proxy: Stopped tbot (pid {apps_pid})",
        f"teleport-actions/auth/database-tunnel: Stopped tbot (pid {pid})",
    ]
    assert done.stdout.count("Run Post Stop tbot and show its log when the job ends") == 2
    assert f"::group::tbot log (database-tunnel, pid {pid})" in done.stdout
    assert f"::group::tbot log (application-proxy, pid {apps_pid})" in done.stdout
    assert "left running by job" not in done.stdout
    assert gone_within(pid)
    assert gone_within(apps_pid)
    [event] = job.events  # only the tunnel opted in
    assert event["props"]["tbot.version"] == "18.6.4"
    assert event["props"]["tbot.run_mode"] == "daemon"


def test_scan_finds_refs_members_and_labels(tmp_path: Path) -> None:
    workflow = """\
on: push
jobs:
  a:
    runs-on: ${{ matrix.os }}
    strategy:
      matrix:
        os: [ubuntu-22.04, big-runner]
        include:
          - os: arm-runner
    steps:
      - uses: teleport-actions/auth@v1
      - uses: "teleport-actions/auth/k8s@v1"   # same ref: one mapping
      - uses: ./.github/actions/login
  b:
    runs-on: {group: ours, labels: [self-hosted, gpu]}
    steps:
      - uses: 'teleport-actions/auth/database-tunnel@release-2'
  c:
    runs-on: ${{ inputs.where }}
    steps: [{run: echo}]
"""
    composite = "runs:\n  using: composite\n  steps:\n    - uses: teleport-actions/auth@sha-1\n"
    repo = make_repo(
        tmp_path,
        {".github/workflows/w.yml": workflow, ".github/actions/login/action.yml": composite},
    )
    found = scan(repo, workflow_files(repo, None))
    assert found.mappings() == [
        "teleport-actions/auth@v1",
        "teleport-actions/auth@release-2",
        "teleport-actions/auth@sha-1",
    ]
    assert found.members() == {"", "k8s", "database-tunnel"}
    assert found.labels == {"ubuntu-22.04", "big-runner", "arm-runner", "self-hosted", "gpu"}


def test_view_links_everything_but_the_action_files(tmp_path: Path) -> None:
    folders = [m.folder for m in MEMBERS if m.folder]
    view = make_view(REPO, tmp_path / "view", folders)
    for folder in ("", *folders):
        copied = view / folder / "action.yml"
        assert not copied.is_symlink()
        assert copied.read_bytes() == (REPO / folder / "action.yml").read_bytes()
    for name in LINKED:
        assert (view / name).resolve() == (REPO / name).resolve()
    assert sorted(p.name for p in view.iterdir()) == sorted([*folders, "action.yml", *LINKED])


def test_view_needs_the_bundle(tmp_path: Path) -> None:
    (tmp_path / "checkout").mkdir()
    with pytest.raises(ViewError, match="_vendor/ has no bundle"):
        make_view(tmp_path / "checkout", tmp_path / "view", [])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{tmp}/missing"], "missing: not a folder"),
        (["{tmp}", "-W", "nope.yml"], "-W nope.yml: no such file or folder"),
        (["{tmp}"], "no workflow file or folder at"),
        (["{tmp}/repo", "--tbot", "{tmp}/none"], "--tbot {tmp}/none: not an executable file"),
    ],
)
def test_bad_arguments_are_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    make_repo(tmp_path / "repo")
    code = main([a.format(tmp=tmp_path) for a in args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1
    assert message.format(tmp=tmp_path) in err
