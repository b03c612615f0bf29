"""``python3 scripts/dev act REPO``: a user's workflow, unedited, through act.

End to end against throwaway repositories whose workflows use the actions by
name, as users write them: this project's (``teleport-actions/auth@v1``,
``.../k8s@v1``) and the originals' (``teleport-actions/setup@v1``,
``auth@v2``, ``auth-k8s@v2`` in a matrix, ``application-tunnel@<sha>``), a
reusable workflow and a local action, a job without ``id-token: write``, a
misspelt input, Ctrl-C. After each run nothing is left in the temporary
directory or act's cache. The parts that need no act: test_dev_act_scan.py.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import gone_within, standin_daemons
from echo_server import free_port
from standin.install import install_standin
from teleport_auth import HELPER_VERSION
from throwaway_repo import (
    CLUSTER,
    PINNED_SHA,
    TOKEN,
    make_repo,
    originals_workflow,
    reusable_workflows,
)

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


def dev_act_env(tmp_path: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment, with its temporary directory and cache in ``tmp_path``."""
    for name in ("tmp", "cache"):
        (tmp_path / name).mkdir(exist_ok=True)
    base = {
        **os.environ,
        "TMPDIR": str(tmp_path / "tmp"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    return {**base, **(env or {})}


def assert_nothing_left(tmp_path: Path) -> None:
    """Nothing the run wrote stays in the temporary directory or the cache it was given."""
    assert list((tmp_path / "tmp").iterdir()) == []
    assert list((tmp_path / "cache").iterdir()) == []


def assert_nothing_fetched(out: str) -> None:
    """act cloned no action: every one was served from this checkout or a stand-in."""
    assert "git clone" not in out
    assert "failed to fetch" not in out


def job_lines(out: str, job: str) -> list[str]:
    """What act showed for ``job``, without the ``[job]   | `` prefix."""
    prefix = f"[{job}]"
    return [
        re.sub(r"^ +(\| )?", "", line[len(prefix) :])
        for line in out.splitlines()
        if line.startswith(prefix + " ")
    ]


def dev_act(
    *args: str, cwd: Path, tmp_path: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python3 scripts/dev act ARGS`` from ``cwd``, bounded."""
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, str(REPO / "scripts" / "dev"), "act", *args],
        cwd=cwd,
        env=dev_act_env(tmp_path, env),
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
    assert_nothing_left(tmp_path)


@pytest.mark.act
def test_verbose_and_tbot_option(tmp_path: Path) -> None:
    """--verbose shows everything (debug lines, act's own notes); --tbot puts that tbot on PATH."""
    standin = install_standin(tmp_path / "standin")
    real = tmp_path / "real" / "tbot"
    real.parent.mkdir()
    real.write_text(f'#!/bin/sh\nSTANDIN_TBOT_VERSION=17.1.0 exec "{standin}" "$@"\n')
    real.chmod(0o755)
    repo = make_repo(tmp_path / "their-repo")
    done = dev_act(
        str(repo), "--verbose", "-j", "deploy", "--tbot", str(real), cwd=tmp_path, tmp_path=tmp_path
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    debug = [line for line in out.splitlines() if "::debug::" in line]
    assert any("Anonymous telemetry event" in line for line in debug), out
    # RUNNER_DEBUG=1, as GitHub's debug logging sets it: tbot runs with --debug.
    assert "Debug logging has been enabled" in out
    # act's own notes are shown (left out without --verbose), its debug chatter is not.
    assert "LocalRepositoryCache matched https://github.com/teleport-actions/auth" in out
    assert "Couldn't get a valid docker connection" in out
    assert "Loading workflows" not in out
    assert f"tbot: {real}" in out
    assert "Using tbot 17.1.0 (" in out
    job = parse_summary(out)["ci/deploy"]
    assert job.outcome == "succeeded"
    assert [e["props"]["tbot.version"] for e in job.events] == ["17.1.0", "17.1.0"]
    # A real tbot: no word about the stand-in's throwaway CA.
    assert "Teleport: a stand-in" not in out
    assert_nothing_left(tmp_path)


class _Backend(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f"hello through the tunnel: {self.path}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


@pytest.fixture
def backend() -> Iterator[str]:
    """An HTTP server on 127.0.0.1, the application behind the tunnel: its host:port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Backend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.act
def test_unedited_workflow_for_the_originals_runs_green(tmp_path: Path, backend: str) -> None:
    proxy = f"127.0.0.1:{free_port()}"  # nothing listens: clients get as far as connecting
    workflow = originals_workflow(proxy, free_port(), free_port())
    repo = make_repo(tmp_path / "their-repo", {".github/workflows/originals.yml": workflow})

    done = dev_act(
        str(repo), cwd=tmp_path, tmp_path=tmp_path, env={"STANDIN_TBOT_BACKEND": backend}
    )

    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    # Each reference mapped, and said once.
    for uses, target in [
        ("teleport-actions/setup@v1", "a local stand-in that installs and downloads nothing"),
        ("teleport-actions/auth@v2", "this checkout's auth member"),
        ("teleport-actions/auth-k8s@v2", "this checkout's k8s member"),
        (
            f"teleport-actions/application-tunnel@{PINNED_SHA}",
            "this checkout's application-tunnel member",
        ),
    ]:
        assert out.count(f"{uses} → {target}\n") == 1, out
    assert "LocalRepositoryCache" not in out
    assert "Couldn't get a valid docker connection" not in out
    jobs = parse_summary(out)
    assert {name: job.outcome for name, job in jobs.items()} == {
        "originals/kube-1": "succeeded",
        "originals/kube-2": "succeeded",
        "originals/tunnel": "succeeded",
    }
    # GitHub's warning for the misspelt input, naming the step; the input did nothing.
    warning = (
        '.github/workflows/originals.yml: job kube, step "Authorize against Teleport" '
        "(teleport-actions/auth@v2): Unexpected input(s) 'anonymous_telemetry', valid inputs are "
        "['proxy', 'token', 'certificate-ttl', 'anonymous-telemetry', 'ca-pins', "
        "'disable-env-vars', 'allow-reissue']"
    )
    assert f"warning (GitHub warns too): {warning}" in out
    assert f"Warning (as on GitHub), {warning}" in out
    for name, cluster in (("originals/kube-1", "cluster-a"), ("originals/kube-2", "cluster-b")):
        job = jobs[name]
        assert job.steps["auth"]["uses"] == "teleport-actions/auth@v2"
        assert job.steps["kube"]["uses"] == "teleport-actions/auth-k8s@v2"
        # setup's version became the stand-in's; only auth-k8s opted in (auth's input misspelt).
        [event] = job.events
        assert event["helper"] == "gha:teleport-actions/auth-k8s"
        assert event["props"]["tbot.version"] == "17.4.8"
        lines = job_lines(out, name)
        assert "Teleport v17.4.8 git:v17.4.8-0-g1a2b3c4 go1.22.8" in lines
        # Real certificates from the run's CA: openssl verifies the chain, ssh-keygen reads it.
        assert any(line.endswith("/tlscert: OK") for line in lines), lines
        assert "ssh certificate: ecdsa-sha2-nistp256-cert-v01@openssh.com user certificate" in lines
        if shutil.which("kubectl"):
            assert any(f"kubectl {cluster}: " in x and "was refused" in x for x in lines), lines
    tunnel = jobs["originals/tunnel"]
    assert tunnel.steps["tunnel"]["uses"] == f"teleport-actions/application-tunnel@{PINNED_SHA}"
    assert "hello through the tunnel: /status" in job_lines(out, "originals/tunnel")
    [event] = tunnel.events
    assert (event["props"]["tbot.version"], event["props"]["tbot.run_mode"]) == ("18.6.4", "daemon")
    # The tunnel's tbot, left running by the workflow, ended with the job as on GitHub.
    assert int(tunnel.steps["tunnel"]["outputs"]["tbot-pid"]) not in standin_daemons()
    assert "Teleport: a stand-in." in out
    assert f"relayed every connection to STANDIN_TBOT_BACKEND ({backend})" in out
    # act repeats a composite action's outputs for the outer step: shown once.
    kube_1 = job_lines(out, "originals/kube-1")
    assert sum("::set-env:: KUBECONFIG=" in line for line in kube_1) == 1
    assert TOKEN not in out + done.stderr
    assert_nothing_fetched(out)
    assert_nothing_left(tmp_path)


@pytest.mark.act
def test_reusable_workflow_and_a_missing_permission_as_on_github(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "their-repo", reusable_workflows(f"127.0.0.1:{free_port()}"))

    done = dev_act(str(repo), "-W", "caller.yml", cwd=tmp_path, tmp_path=tmp_path)

    out = done.stdout
    assert done.returncode != 0
    # The called workflow and the local action it uses were followed; the unselected one was not.
    assert "teleport-actions/auth@v2.0.1 → this checkout's auth member\n" in out
    assert "teleport-actions/setup@v1 → a local stand-in" in out
    assert "not-selected" not in out
    jobs = parse_summary(out)
    assert {name: job.outcome for name, job in jobs.items()} == {
        "login/login/deploy": "succeeded",
        "caller/forgot": "FAILED",
        "caller/refuse": "FAILED",
    }
    assert "the called workflow logged in" in job_lines(out, "login/login/deploy")
    # Granted by the calling job, so the called job got GitHub's OIDC variables; `forgot`
    # did not, and failed with the step's own message about the permission.
    forgot = job_lines(out, "caller/forgot")
    assert any("::error::" in line and "id-token: write" in line for line in forgot), forgot
    # `permissions: write-all` grants it: that job fails for its empty token only.
    refuse = job_lines(out, "caller/refuse")
    required = "::error::Input 'token' is required: the name of the bot's GitHub join token."
    assert any(required in line for line in refuse), refuse
    assert not any("id-token" in line for line in refuse), refuse
    assert jobs["caller/refuse"].steps["0"]["uses"] == "teleport-actions/auth@main"
    assert_nothing_fetched(out)
    assert_nothing_left(tmp_path)


@pytest.mark.act
def test_daemon_member_gets_its_tbot_version_and_is_stopped_after(tmp_path: Path) -> None:
    workflow = f"""\
name: tunnel
on: push
permissions:
  id-token: write
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


@pytest.mark.act
def test_ctrl_c_removes_everything_and_stops_the_daemons(tmp_path: Path) -> None:
    workflow = f"""\
name: slow
on: push
permissions:
  id-token: write
jobs:
  db:
    runs-on: ubuntu-latest
    steps:
      - uses: teleport-actions/database-tunnel@v1
        with:
          proxy: 127.0.0.1:{free_port()}
          token: {TOKEN}
          listen: tcp://127.0.0.1:{free_port()}
          diag-port: "{free_port()}"
          service: pg
          database: app
          username: ci
      - run: echo "waiting for Ctrl-C"; sleep 300
"""
    repo = make_repo(tmp_path / "their-repo", {".github/workflows/slow.yml": workflow})
    process = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "dev"), "act", str(repo)],
        cwd=tmp_path,
        env=dev_act_env(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )
    lines: list[str] = []
    waiting = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "| waiting for Ctrl-C" in line:
                waiting.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert waiting.wait(timeout=120), "".join(lines)
        daemons = standin_daemons()
        assert daemons, "".join(lines)
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        process.wait(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    reader.join(timeout=30)
    out = "".join(lines)
    assert process.returncode == 130, out
    assert not set(daemons) & set(standin_daemons()), out
    assert re.search(
        r"Private directory \S+ \(act's cache, every job's RUNNER_TEMP\): removed", out
    )
    assert_nothing_left(tmp_path)
