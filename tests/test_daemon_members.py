"""The daemon members through the whole step, with the stand-in as a daemon and an echo backend."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import REPO, Job, assert_token_never_printed
from echo_server import EchoServer, free_port
from step_helpers import alive, daemons_of, echo_through, errors, run_step, stop_daemon, warnings
from teleport_auth.config import build_config, to_file_text
from teleport_auth.end_of_job import STATE_ENV, State
from teleport_auth.family import member, tunnels
from teleport_auth.family.tunnels import TunnelPlan
from teleport_auth.inputs import InputError, Inputs, env_name

pytestmark = pytest.mark.step

# The step as the launcher runs it.
STEP = [sys.executable, "-I", "-S", "-X", "utf8", str(REPO / "src" / "run_action.py")]


@dataclass
class Case:
    key: str
    own_inputs: dict[str, str]
    # The original's service entry for these inputs (docs/compatibility.md), without listen.
    service: dict[str, Any]


CASES = [
    Case(
        "database-tunnel",
        {"service": "postgres-prod", "database": "app", "username": "ci"},
        {
            "type": "database-tunnel",
            "roles": [],
            "service": "postgres-prod",
            "database": "app",
            "username": "ci",
        },
    ),
    Case(
        "application-tunnel",
        {"app": "grafana"},
        {"type": "application-tunnel", "roles": [], "app_name": "grafana"},
    ),
    Case("application-proxy", {}, {"type": "application-proxy"}),
]


def by_key(case: Case) -> str:
    return case.key


@pytest.fixture
def daemon_job(job: Job, echo: EchoServer) -> Iterator[Job]:
    """A job for a daemon member: tbot 18.6.4, free ports, the echo backend; no tbot outlives it."""
    job.env |= {
        "STANDIN_TBOT_VERSION": "18.6.4",
        "STANDIN_TBOT_BACKEND": echo.hostport,
        "INPUT_LISTEN": f"tcp://127.0.0.1:{free_port()}",
        "INPUT_DIAG_PORT": str(free_port()),
        "INPUT_TIMEOUT_MS": "20000",
    }
    try:
        yield job
    finally:
        pid = Path(job.root / "tbot-pid")
        if pid.exists():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(int(pid.read_text()), signal.SIGKILL)
        for leftover in daemons_of(job):
            with contextlib.suppress(ProcessLookupError):
                os.kill(leftover, signal.SIGKILL)


def run_member(job: Job, case: Case, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    job.env |= {env_name(name): value for name, value in case.own_inputs.items()}
    code, log = run_step(capsys, [case.key])
    if "tbot-pid" in job.outputs:
        (job.root / "tbot-pid").write_text(job.outputs["tbot-pid"])
    return code, log


@pytest.mark.parametrize("case", CASES, ids=by_key)
def test_config_means_what_the_originals_does(case: Case) -> None:
    found = member(case.key)
    assert found is not None
    port = free_port()
    env = {env_name(k): v for k, v in case.own_inputs.items()}
    env[env_name("listen")] = f"tcp://127.0.0.1:{port}"
    env[env_name("diag-port")] = str(free_port())
    own = found.read(env)
    inputs = Inputs("tele.example.com:443", "t", "", (), disable_env_vars=False)
    config = yaml.safe_load(to_file_text(build_config(inputs, own, Path("/x"), oneshot=False)))
    assert config == {
        "version": "v2",
        "proxy_server": "tele.example.com:443",
        "oneshot": False,
        "onboarding": {"join_method": "github", "token": "t", "ca_pins": []},
        "storage": {"type": "memory"},
        "outputs": [],
        "services": [{**case.service, "listen": f"tcp://127.0.0.1:{port}"}],
    }


@pytest.mark.parametrize("case", CASES, ids=by_key)
def test_tunnel_is_up_when_the_step_ends(
    daemon_job: Job, case: Case, echo: EchoServer, capsys: pytest.CaptureFixture[str]
) -> None:
    job = daemon_job
    code, log = run_member(job, case, capsys)
    assert code == 0, log
    assert not errors(log)
    outputs = job.outputs
    port = int(job.env["INPUT_LISTEN"].rsplit(":", 1)[1])
    prefix = case.key
    assert outputs[f"{prefix}-uri"] == job.env["INPUT_LISTEN"]
    assert outputs[f"{prefix}-port"] == str(port)
    assert outputs["diag-addr"] == f"127.0.0.1:{job.env['INPUT_DIAG_PORT']}"
    pid = int(outputs["tbot-pid"])
    assert alive(pid)
    # Detached: its own session and process group, not the step's.
    assert os.getsid(pid) == pid
    assert os.getpgid(pid) == pid
    log_path = Path(outputs["log-path"])
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(log_path.parent.stat().st_mode) == 0o700
    # The config (it held the token) is gone once tbot is ready: only the log's directory is left.
    assert job.runner_temp_entries() == [log_path.parent]
    assert [p.name for p in log_path.parent.iterdir()] == ["tbot.log"]
    # A later step talks through the tunnel to the backend.
    assert echo_through(port, b"SELECT 1;\n") == b"SELECT 1;\n"
    assert echo.connections == 1
    # What the end-of-job step gets: this tbot (pid and start time) and its log.
    state = State.from_text(outputs["end-of-job-state"])
    assert state == State(case.key, pid, state.start, log_path)
    assert state.start == int(Path(f"/proc/{pid}/stat").read_text().rsplit(")")[1].split()[19])
    assert outputs["end-of-job-script"] == str(REPO / "src" / "run_end_of_job.py")
    assert outputs["end-of-job-python"] == sys.executable
    stop_daemon(pid)
    # The stand-in records its invocation when it stops.
    [start] = [r for r in job.records if "start" in r["argv"]]
    assert start["argv"][-2:] == ["--diag-addr", outputs["diag-addr"]]
    found = member(case.key)
    assert found is not None
    assert start["env"]["_TBOT_TELEMETRY_HELPER"] == found.helper
    assert f"### {found.title}" in job.summary


@pytest.mark.launched
def test_the_end_of_job_step_stops_this_tbot_and_shows_its_log(
    daemon_job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    job = daemon_job
    code, log = run_member(job, CASES[1], capsys)
    assert code == 0, log
    outputs = job.outputs
    pid = int(outputs["tbot-pid"])
    # What the nested end-of-job action's post runs when the job ends.
    done = subprocess.run(
        [outputs["end-of-job-python"], "-I", "-S", "-X", "utf8", outputs["end-of-job-script"]],
        env={"PATH": job.env["PATH"], STATE_ENV: outputs["end-of-job-state"]},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(
        f"teleport-actions/auth/application-tunnel: Stopped tbot (pid {pid})"
    )
    assert lines[1] == f"::group::tbot log (application-tunnel, pid {pid})"
    assert lines[3:-2] == Path(outputs["log-path"]).read_text().splitlines()
    assert "Received signal, shutting down. signal:SIGTERM" in lines[-3]
    assert not alive(pid)
    assert not daemons_of(job)


def test_readiness_timeout_fails_and_leaves_no_tbot(
    daemon_job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    job = daemon_job
    job.env |= {"STANDIN_TBOT_READY_DELAY": "30", "INPUT_TIMEOUT_MS": "500"}
    code, log = run_member(job, CASES[0], capsys)
    assert code == 1
    assert errors(log) == [
        "::error::tbot was not ready within 500 ms (input 'timeout-ms', default 30000); raise it "
        "if tbot needs longer to join and start its service"
    ]
    assert not daemons_of(job)
    # As the original: the log is shown and kept, its path and the diagnostics
    # address are outputs of the failed step (nothing else, no credential).
    log_path = Path(job.outputs["log-path"])
    assert job.outputs == {
        "log-path": str(log_path),
        "diag-addr": f"127.0.0.1:{job.env['INPUT_DIAG_PORT']}",
    }
    assert job.runner_temp_entries() == [log_path.parent]
    assert [p.name for p in log_path.parent.iterdir()] == ["tbot.log"]
    assert stat.S_IMODE(log_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(log_path.parent.stat().st_mode) == 0o700
    group = log.split("::group::tbot log\n", 1)[1].split("::endgroup::", 1)[0]
    assert group.splitlines()[1:-1] == log_path.read_text().splitlines()
    assert "Received signal, shutting down. signal:SIGTERM" in group


def test_tbot_exiting_before_ready_shows_its_whole_log(
    daemon_job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    job = daemon_job
    job.env["STANDIN_TBOT_FAIL"] = "joining failed: token not found"
    code, log = run_member(job, CASES[0], capsys)
    assert code == 1
    assert errors(log) == ["::error::tbot exited with code 1 before it was ready"]
    group = log.split("::group::tbot log\n", 1)[1].split("::endgroup::", 1)[0].splitlines()
    # The log's lines could not act as workflow commands.
    assert group[0].startswith("::stop-commands::")
    log_path = Path(job.outputs["log-path"])
    # The whole log (test_end_of_job shows one of 500 lines whole), as the file keeps it.
    assert group[1:-1] == log_path.read_text().splitlines()
    assert "ERROR: joining failed: token not found" in group[-2]
    assert set(job.outputs) == {"log-path", "diag-addr"}
    assert job.runner_temp_entries() == [log_path.parent]


def test_port_in_use_is_refused_before_tbot(
    daemon_job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    job = daemon_job
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        job.env["INPUT_LISTEN"] = f"tcp://127.0.0.1:{port}"
        code, log = run_member(job, CASES[0], capsys)
    assert code == 1
    assert errors(log) == [
        f"::error::Input 'listen': port {port} on 127.0.0.1 is already in use; choose a free port."
    ]
    assert job.records == []


def test_diag_port_in_use_is_refused_before_tbot(
    daemon_job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    job = daemon_job
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        job.env["INPUT_DIAG_PORT"] = str(taken.getsockname()[1])
        code, log = run_member(job, CASES[2], capsys)
    assert code == 1
    [error] = errors(log)
    assert "Input 'diag-port'" in error
    assert "already in use" in error
    assert job.records == []


def test_timeout_zero_skips_the_wait_with_a_warning(
    daemon_job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    job = daemon_job
    job.env |= {"INPUT_TIMEOUT_MS": "0", "STANDIN_TBOT_READY_DELAY": "30"}
    code, log = run_member(job, CASES[2], capsys)
    assert code == 0, log
    assert any("timeout-ms is 0" in w for w in warnings(log))
    # Not ready yet, but the config is already gone.
    log_dir = Path(job.outputs["log-path"]).parent
    assert job.runner_temp_entries() == [log_dir]
    stop_daemon(int(job.outputs["tbot-pid"]))


def test_non_loopback_listen_is_accepted_with_a_warning(
    daemon_job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    job = daemon_job
    job.env["INPUT_LISTEN"] = f"tcp://0.0.0.0:{free_port()}"
    code, log = run_member(job, CASES[2], capsys)
    assert code == 0, log
    [warning] = warnings(log)
    assert "reached from beyond this runner" in warning
    stop_daemon(int(job.outputs["tbot-pid"]))


LISTEN_REJECTED = [
    ("", "Input 'listen' is required"),
    ("127.0.0.1:5432", "tcp:// URI"),
    ("http://127.0.0.1:5432", "tcp:// URI"),
    ("tcp://127.0.0.1", "needs a port"),
    ("tcp://127.0.0.1:0", "needs a port"),
    ("tcp://127.0.0.1:70000", "port from 1 to 65535"),
    ("tcp://127.0.0.1:5432 x", "without spaces"),
    ("tcp://:5432", "must name a host"),
]


@pytest.mark.parametrize(("value", "message"), LISTEN_REJECTED)
def test_listen_rejected(value: str, message: str) -> None:
    found = member("application-proxy")
    assert found is not None
    with pytest.raises(InputError) as caught:
        found.read({env_name("listen"): value, env_name("diag-port"): str(free_port())})
    assert message in caught.value.message


NUMBERS = [
    # (input, value, warns): the original's parseInt, NaN -> default.
    ("timeout-ms", "", 30000, False),
    ("timeout-ms", "1500", 1500, False),
    ("timeout-ms", " 1500 ", 1500, False),
    ("timeout-ms", "1500ms", 1500, True),
    ("timeout-ms", "soon", 30000, True),
    ("diag-port", "", 57263, False),
    ("diag-port", "abc", 57263, True),
]


@pytest.mark.parametrize(("name", "given", "value", "warns"), NUMBERS)
def test_numbers_as_the_original_parses_them(
    name: str, given: str, value: int, warns: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = member("application-proxy")
    assert found is not None
    env = {env_name("listen"): f"tcp://127.0.0.1:{free_port()}", env_name(name): given}
    if name == "timeout-ms":
        env[env_name("diag-port")] = str(free_port())
    # Parsing only: whether the default port is free on this machine is beside the point
    # (the probe has tests of its own).
    monkeypatch.setattr(tunnels, "port_is_free", lambda host, port: True)
    own = found.read(env)
    assert isinstance(own, TunnelPlan)
    assert getattr(own.tunnel, name.replace("-", "_")) == value
    assert bool(own.tunnel.warnings) is warns


@pytest.mark.parametrize(
    ("name", "given", "message"),
    [("timeout-ms", "-1", "milliseconds from 0"), ("diag-port", "0", "port from 1 to 65535")],
)
def test_numbers_rejected(name: str, given: str, message: str) -> None:
    found = member("application-proxy")
    assert found is not None
    env = {env_name("listen"): f"tcp://127.0.0.1:{free_port()}", env_name(name): given}
    if name == "timeout-ms":
        env[env_name("diag-port")] = str(free_port())
    with pytest.raises(InputError) as caught:
        found.read(env)
    assert f"Input '{name}'" in caught.value.message
    assert message in caught.value.message


def test_daemon_members_need_tbot_18_6_4(
    daemon_job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    job = daemon_job
    job.env["STANDIN_TBOT_VERSION"] = "18.6.3"
    code, log = run_member(job, CASES[1], capsys)
    assert code == 1
    [error] = errors(log)
    assert "needs tbot 18.6.4 or newer; the installed tbot is 18.6.3" in error
    assert not job.started_tbot


@pytest.mark.launched
def test_cancelling_the_wait_stops_tbot_and_removes_the_config(daemon_job: Job) -> None:
    job = daemon_job
    job.env |= {env_name(k): v for k, v in CASES[0].own_inputs.items()}
    job.env |= {"STANDIN_TBOT_READY_DELAY": "60"}
    step = subprocess.Popen(
        [*STEP, "database-tunnel"],
        env=job.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        # Signal once the step says tbot runs (it then waits for readiness, 60 s away).
        assert step.stdout is not None
        for line in step.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Started tbot in the background"):
                break
        # The stand-in's wrapper (sh) becomes python a moment later: a bounded look.
        deadline = time.monotonic() + 10
        mine: list[int] = []
        while not mine and time.monotonic() < deadline:
            mine = daemons_of(job)
            time.sleep(0.02)
        assert len(mine) == 1, lines
        step.send_signal(signal.SIGTERM)
        rest, _ = step.communicate(timeout=30)
        out = "\n".join(lines) + "\n" + rest
    finally:
        if step.poll() is None:
            step.kill()
            step.wait()
    assert step.returncode == 128 + signal.SIGTERM, out
    assert_token_never_printed(out)  # stdout and stderr, merged
    assert errors(out) == ["::error::The step was cancelled (SIGTERM)."]
    assert not alive(mine[0])
    assert job.runner_temp_entries() == []
    assert job.outputs == {}


def test_a_blocking_wait_endpoint_works_too(
    daemon_job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    # Current tbot holds /wait open until every service is ready, instead of answering 503.
    job = daemon_job
    job.env |= {"STANDIN_TBOT_WAIT": "block", "STANDIN_TBOT_READY_DELAY": "1.5"}
    code, log = run_member(job, CASES[2], capsys)
    assert code == 0, log
    assert any(line.startswith("tbot is ready after") for line in log.splitlines())
    stop_daemon(int(job.outputs["tbot-pid"]))


@pytest.mark.parametrize("name", ["service", "database", "username"])
def test_database_tunnel_needs_all_three_names(name: str) -> None:
    # tbot refuses a database tunnel without any of them: said before tbot starts.
    found = member("database-tunnel")
    assert found is not None
    env = {env_name(k): v for k, v in CASES[0].own_inputs.items()}
    env |= {env_name("listen"): f"tcp://127.0.0.1:{free_port()}"}
    env |= {env_name("diag-port"): str(free_port()), env_name(name): " "}
    with pytest.raises(InputError) as caught:
        found.read(env)
    assert caught.value.message.startswith(f"Input '{name}' is required")


def test_a_failed_publish_stops_the_daemon(
    daemon_job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    job = daemon_job
    job.env["GITHUB_OUTPUT"] = "/dev/full"  # (reading it never ends: not through run_member)
    code, log = run_step(capsys, [CASES[2].key])
    assert code == 1
    assert errors(log) == [
        "::error::Could not write to GITHUB_OUTPUT (/dev/full): No space left on device."
    ]
    # tbot was ready, then publishing failed: it is stopped, its log removed.
    assert not daemons_of(job)
    assert job.runner_temp_entries() == []


def test_the_port_probe_binds_what_go_binds(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # IPv6 listed first, IPv4 taken: Go binds IPv4 first, so the port is in use.
        both = [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
        ]
        monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: list(both))
        assert tunnels.port_is_free("localhost", port) is False


def test_a_family_this_host_lacks_is_left_to_tbot(monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    only_v6 = [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", 5432, 0, 0))]
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: list(only_v6))

    def no_ipv6(*args: object, **kwargs: object) -> socket.socket:
        raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")

    monkeypatch.setattr(socket, "socket", no_ipv6)
    assert tunnels.port_is_free("localhost", 5432) is True
