"""End to end per member: its action.yml run by act (demo/family.yml), with a collector."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from act_harness import (
    FAMILY_WORKFLOW,
    ActRun,
    CollectorProcess,
    prepare_workspace,
    run_act,
)
from conftest import SESSION_MARKER, gone_within
from echo_server import EchoServer, free_port
from teleport_auth import HELPER_VERSION

pytestmark = pytest.mark.act


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return prepare_workspace(tmp_path_factory.mktemp("act-family"), FAMILY_WORKFLOW)


def run_member(
    workspace: Path,
    bin_dir: Path,
    collector_process: CollectorProcess,
    job: str,
    extra_env: dict[str, str] | None = None,
) -> ActRun:
    return run_act(
        workspace,
        bin_dir=bin_dir,
        telemetry="true",
        job=job,
        env={
            "TELEPORT_ANONYMOUS_TELEMETRY_ADDRESS": collector_process.url,
            "STANDIN_TBOT_SESSION": SESSION_MARKER,
            "STANDIN_TBOT_MAX_LIFETIME": "120",
            **(extra_env or {}),
        },
        variables={"DEMO_LISTEN_PORT": str(free_port()), "DEMO_DIAG_PORT": str(free_port())},
    )


def expected_event(helper: str, run_mode: str, **counts: int) -> dict[str, Any]:
    return {
        "tbot.run_mode": run_mode,
        "tbot.version": "18.6.4" if run_mode == "daemon" else "16.4.2",
        "tbot.join_type": "github",
        "tbot.helper": helper,
        "tbot.helper_version": HELPER_VERSION,
        "tbot.destinations_other": counts.get("other", 0),
        "tbot.destinations_database": counts.get("database", 0),
        "tbot.destinations_kubernetes": counts.get("kubernetes", 0),
        "tbot.destinations_application": counts.get("application", 0),
    }


def assert_private(run: ActRun, files: set[str]) -> None:
    modes = run.reported("mode")
    assert modes.pop("destination-dir") == "700"
    assert files <= set(modes)
    assert set(modes.values()) == {"600"}


def test_k8s(workspace: Path, bin_dir: Path, collector_process: CollectorProcess) -> None:
    run = run_member(workspace, bin_dir, collector_process, "k8s")
    assert run.succeeded, run.log
    outputs = run.reported("output")
    destination = outputs["destination-dir"]
    assert outputs["identity-file"] == f"{destination}/identity"
    assert outputs["kubeconfig"] == f"{destination}/kubeconfig.yaml"
    assert run.reported("env")["KUBECONFIG"] == outputs["kubeconfig"]
    # A later step reads the kubeconfig tbot wrote, for the cluster asked for.
    [context] = [line for line in run.step_lines if line.startswith("context ")]
    assert "demo-cluster" in context
    assert_private(run, {"kubeconfig.yaml", "identity", "tlscert", "key"})
    [event] = collector_process.events()
    assert event["properties"] == expected_event(
        "gha:teleport-actions/auth-k8s", "one-shot", kubernetes=1
    )


def test_application(workspace: Path, bin_dir: Path, collector_process: CollectorProcess) -> None:
    run = run_member(workspace, bin_dir, collector_process, "application")
    assert run.succeeded, run.log
    outputs = run.reported("output")
    destination = outputs["destination-dir"]
    assert outputs["certificate-file"] == f"{destination}/tlscert"
    assert outputs["key-file"] == f"{destination}/key"
    assert outputs["identity-file"] == f"{destination}/identity"
    assert_private(run, {"tlscert", "key", "identity"})
    [event] = collector_process.events()
    assert event["properties"] == expected_event(
        "gha:teleport-actions/auth-application", "one-shot", application=1
    )


END_OF_JOB_STEP = "Stop tbot and show its log when the job ends"


def end_of_job(run: ActRun) -> list[str]:
    """What the member's end-of-job step printed, from act's "Run Post" of it on."""
    lines = run.log.splitlines()
    [start] = [i for i, line in enumerate(lines) if f"Run Post {END_OF_JOB_STEP}" in line]
    shown = []
    for line in lines[start + 1 :]:
        if f"Post {END_OF_JOB_STEP} [" in line:  # act's "Success - Post ..." line
            break
        _, sep, rest = line.partition("]   | ")
        shown.append(rest if sep else line.partition("]   ")[2].strip())
    return shown


def test_database_tunnel_serves_a_later_step(
    workspace: Path, bin_dir: Path, collector_process: CollectorProcess
) -> None:
    with EchoServer() as echo:
        run = run_member(
            workspace,
            bin_dir,
            collector_process,
            "database-tunnel",
            {"STANDIN_TBOT_VERSION": "18.6.4", "STANDIN_TBOT_BACKEND": echo.hostport},
        )
        assert run.succeeded, run.log
        # The later step's bytes went through the tunnel to the backend and back.
        assert "reply SELECT 1;" in run.step_lines
        assert echo.connections == 1
    outputs = run.reported("output")
    assert outputs["database-tunnel-uri"] == f"tcp://127.0.0.1:{outputs['database-tunnel-port']}"
    assert run.reported("mode")["log-path"] == "600"
    [event] = collector_process.events()
    # tbot counts outputs only: a tunnel's service leaves every counter at 0.
    assert event["properties"] == expected_event("gha:teleport-actions/database-tunnel", "daemon")
    # The workflow left tbot running: at the end of the job the member's end-of-job
    # step (the nested action's post) stopped it, then showed its whole log.
    pid = outputs["tbot-pid"]
    post = end_of_job(run)
    assert post[0].startswith(f"teleport-actions/auth/database-tunnel: Stopped tbot (pid {pid})")
    assert f"::group::tbot log (database-tunnel, pid {pid})" in post[1]
    assert "::stop-commands::" in post[2]
    log = "\n".join(post)
    # From its first line to its shutdown, which happened after the later step.
    assert "Initializing tbot version:18.6.4" in post[3]
    assert "All services are ready." in log
    assert "Received signal, shutting down. signal:SIGTERM" in log
    assert post[-1].endswith("::endgroup::")
    assert gone_within(int(pid))


@pytest.mark.parametrize("job", ["application-tunnel", "application-proxy"])
def test_other_daemon_members_send_their_event(
    workspace: Path, bin_dir: Path, collector_process: CollectorProcess, job: str
) -> None:
    with EchoServer() as echo:
        run = run_member(
            workspace,
            bin_dir,
            collector_process,
            job,
            {"STANDIN_TBOT_VERSION": "18.6.4", "STANDIN_TBOT_BACKEND": echo.hostport},
        )
    assert run.succeeded, run.log
    assert run.reported("output")[f"{job}-uri"].startswith("tcp://127.0.0.1:")
    [event] = collector_process.events()
    assert event["properties"] == expected_event(f"gha:teleport-actions/{job}", "daemon")
    # Their workflow kills tbot in a later step (the proxy's, by its pid): the
    # end-of-job step still shows the log, and no tbot is left either way.
    post = end_of_job(run)
    assert post[0].startswith(f"teleport-actions/auth/{job}: ")
    assert any("All services are ready." in line for line in post)
    [pid] = [line.rpartition("pid ")[2].rstrip(")") for line in post if "::group::" in line]
    assert gone_within(int(pid))
