"""Telemetry through the whole step: what is sent, what never is, that it never gets in the way."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import json_format

from conftest import REPO, Job
from echo_server import free_port
from fault_server import FaultServer, private_ca
from step_helpers import run_step, warnings
from teleport_auth import HELPER_VERSION, __version__
from teleport_auth._proto.prehog.v1alpha import tbot_pb2
from teleport_auth.config import build_config, write_config
from teleport_auth.family import MEMBERS
from teleport_auth.inputs import Inputs, env_name
from teleport_auth.telemetry import wire
from teleport_auth.telemetry.event import build_event
from teleport_auth.telemetry.sender import Outcome, Submission

pytestmark = [pytest.mark.step, pytest.mark.allow_hosts(["127.0.0.1"])]


def opt_in(job: Job, url: str) -> None:
    job.env["INPUT_ANONYMOUS_TELEMETRY"] = "true"
    job.env["TELEPORT_ANONYMOUS_TELEMETRY_ADDRESS"] = url


def timed_step(capsys: pytest.CaptureFixture[str]) -> tuple[int, str, float]:
    """:func:`run_step`, and how long the step took."""
    started = time.monotonic()
    code, log = run_step(capsys)
    return code, log, time.monotonic() - started


def telemetry_cell(summary: str) -> str:
    """The job summary's telemetry cell: plain text, one line, no cell separator in it."""
    [row] = [line for line in summary.splitlines() if line.startswith("| Anonymous telemetry |")]
    cell = row.removeprefix("| Anonymous telemetry | ").removesuffix(" |")
    assert not set(cell) & set("|`*_[]<>\\")
    return cell


def printed_event(log: str) -> dict[str, Any]:
    """The JSON document the log showed in the telemetry group."""
    lines = log.splitlines()
    start = lines.index("::group::Anonymous telemetry event")
    end = lines.index("::endgroup::", start)
    body = lines[start + 1 : end]
    assert body[0].startswith("POST ")
    parsed: dict[str, Any] = json.loads("\n".join(body[1:]))
    return parsed


# Loose bound on the whole step: tbot (~0.1 s here) + at most 1 s of grace + slack
# for a busy machine. The exact figure is held by benchmarks/step_time.py.
LOOSE_STEP_SECONDS = 4.0


def authenticated_with_one_warning(job: Job, code: int, log: str, elapsed: float) -> str:
    """The job's outcome is unchanged by telemetry: one warning says what went wrong."""
    assert code == 0, log
    [warning] = warnings(log)
    assert "Traceback" not in log
    assert set(job.outputs) == {"identity-file", "ssh-config", "destination-dir"}
    assert "TELEPORT_IDENTITY_FILE" in job.exported
    assert elapsed < LOOSE_STEP_SECONDS, elapsed
    return warning


def test_event_received_and_decoded(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    with FaultServer("ok") as server:
        opt_in(job, server.url)
        code, log, _ = timed_step(capsys)
        server.wait_for_requests(1, timeout=5)
    assert code == 0, log
    [request] = server.requests
    assert request.method == "POST"
    assert request.path == "/prehog.v1alpha.TbotReportingService/SubmitTbotEvent"
    assert request.header("Content-Type") == "application/proto"
    assert request.header("Connect-Protocol-Version") == "1"
    assert request.header("User-Agent") == f"teleport-actions-auth/{__version__}"
    event = tbot_pb2.SubmitTbotEventRequest.FromString(request.body)
    assert event.WhichOneof("event") == "start"
    assert event.start.run_mode == tbot_pb2.TbotStartEvent.RUN_MODE_ONE_SHOT
    assert event.start.version == "16.4.2"
    assert event.start.join_type == "github"
    assert event.start.helper == "gha:teleport-actions/auth"
    assert event.start.helper_version == HELPER_VERSION
    assert event.start.destinations_other == 1
    assert event.start.destinations_database == 0
    assert event.start.destinations_kubernetes == 0
    assert event.start.destinations_application == 0
    assert abs(event.timestamp.ToSeconds() - time.time()) < 60
    # The log shows the exact event before tbot runs, and the summary the outcome.
    assert log.index("::group::Anonymous telemetry event") < log.index("::group::tbot start")
    assert "Anonymous telemetry is enabled." in log
    assert telemetry_cell(job.summary) == f"on: event sent to 127.0.0.1:{server.port}"
    assert f"::debug::Anonymous telemetry event {event.distinct_id} sent" in log
    assert not warnings(log)


def test_the_bytes_received_are_the_event_the_log_showed(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    with FaultServer("ok") as server:
        opt_in(job, server.url)
        code, log, _ = timed_step(capsys)
        server.wait_for_requests(1, timeout=5)
    assert code == 0, log
    [request] = server.requests
    received = tbot_pb2.SubmitTbotEventRequest.FromString(request.body)
    shown = json_format.MessageToDict(
        received, always_print_fields_with_no_presence=True, preserving_proto_field_name=True
    )
    assert shown == printed_event(log)


CANARIES = {
    "INPUT_PROXY": "canary-proxy-7f3a.example.com:443",
    "INPUT_TOKEN": "canary-token-7f3a",
    "INPUT_CERTIFICATE_TTL": "77m",
    "INPUT_CA_PINS": "sha256:" + "7f3a" * 16,
    "GITHUB_REPOSITORY": "canary-org-7f3a/canary-repo-7f3a",
    "GITHUB_ACTOR": "canary-actor-7f3a",
    "RUNNER_NAME": "canary-runner-7f3a",
    "GITHUB_WORKFLOW": "canary-workflow-7f3a",
}


def test_canaries_never_leave(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    job.env |= CANARIES
    with FaultServer("ok") as server:
        opt_in(job, server.url)
        code, log, _ = timed_step(capsys)
        server.wait_for_requests(1, timeout=5)
    assert code == 0, log
    [request] = server.requests
    head = "\n".join(f"{name}: {value}" for name, value in request.header_lines)
    sent = request.body + b"\n" + request.path.encode() + b"\n" + head.encode()
    needles = list(CANARIES.values())
    needles += ["7f3a", "canary", socket.gethostname(), "77m", str(Path.home())]
    for needle in needles:
        assert needle.encode() not in sent, needle


MAY_HAVE_ARRIVED = "Anonymous telemetry was not confirmed"
NOT_ACCEPTED = "Anonymous telemetry was not accepted by the endpoint"
FAULTS = [
    # (mode, how the warning starts, what it names, how the summary puts it)
    ("hang", MAY_HAVE_ARRIVED, "deadline_exceeded", "may have reached {host}, unconfirmed"),
    ("hang_accept", MAY_HAVE_ARRIVED, "deadline_exceeded", "may have reached {host}, unconfirmed"),
    # The request went out before the reset, or before an answer that is no
    # valid response: it may well have been recorded, so never "not sent".
    ("reset", MAY_HAVE_ARRIVED, "connection reset", "may have reached {host}, unconfirmed"),
    ("garbage", MAY_HAVE_ARRIVED, "internal", "may have reached {host}, unconfirmed"),
    ("wrong_type", MAY_HAVE_ARRIVED, "internal", "may have reached {host}, unconfirmed"),
    ("http500", NOT_ACCEPTED, "unknown", "not accepted by {host}"),
    ("unavailable", NOT_ACCEPTED, "unavailable", "not accepted by {host}"),
    ("redirect", NOT_ACCEPTED, "redirect", "not accepted by {host}"),
]


@pytest.mark.parametrize("fault", FAULTS, ids=[f[0] for f in FAULTS])
def test_faulty_endpoint_never_fails_the_job(
    job: Job, capsys: pytest.CaptureFixture[str], fault: tuple[str, str, str, str]
) -> None:
    mode, opening, named, summary = fault
    with FaultServer(mode) as server:
        opt_in(job, server.url)
        warning = authenticated_with_one_warning(job, *timed_step(capsys))
    host = f"127.0.0.1:{server.port}"
    assert warning.split("::", 2)[2].startswith(opening)
    assert named in warning
    if opening == MAY_HAVE_ARRIVED:
        assert "the event may have arrived" in warning
    assert "not sent" not in warning
    assert "Authentication is not affected." in warning
    cell = telemetry_cell(job.summary)
    assert cell == f"on: {summary.format(host=host)} (see the warning above)"


def test_a_200_too_large_to_read_is_unconfirmed(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    with FaultServer("respond", body=b"x" * (64 * 1024 + 1)) as server:
        opt_in(job, server.url)
        warning = authenticated_with_one_warning(job, *timed_step(capsys))
    assert MAY_HAVE_ARRIVED in warning
    assert "the event may have arrived" in warning
    assert "response larger than 65536 bytes" in warning
    assert telemetry_cell(job.summary).startswith("on: may have reached 127.0.0.1:")


def test_refused_connection(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    from fault_server import held_refused_port

    with held_refused_port() as port:
        opt_in(job, f"http://127.0.0.1:{port}")
        warning = authenticated_with_one_warning(job, *timed_step(capsys))
    assert "Anonymous telemetry was not sent (unavailable: connection refused)" in warning
    cell = telemetry_cell(job.summary)
    assert cell == f"on: not sent to 127.0.0.1:{port} (see the warning above)"


def test_flaky_endpoint_is_retried_once(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    # tbot takes a moment, as a real join does: the retry fits alongside it.
    job.env["STANDIN_TBOT_DELAY"] = "0.5"
    with FaultServer("flaky") as server:
        opt_in(job, server.url)
        code, log, _ = timed_step(capsys)
    assert code == 0, log
    assert len(server.requests) == 2
    assert server.requests[0].body == server.requests[1].body  # the same event, once delivered
    assert not warnings(log)


def test_dns_failure(
    job: Job, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_dns(*args: object, **kwargs: object) -> list[object]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    job.env["INPUT_ANONYMOUS_TELEMETRY"] = "true"
    del job.env["TELEPORT_ANONYMOUS_TELEMETRY_ADDRESS"]  # the default https endpoint
    warning = authenticated_with_one_warning(job, *timed_step(capsys))
    assert "unavailable" in warning
    assert "DNS" in warning


def test_tls_failure(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    with FaultServer("ok") as server:
        # https:// to a plain-HTTP server: the handshake fails.
        opt_in(job, server.url.replace("http://", "https://"))
        warning = authenticated_with_one_warning(job, *timed_step(capsys))
    assert "TLS failed" in warning


@pytest.mark.launched
def test_the_machines_trust_store_is_used(job: Job, tmp_path: Path) -> None:
    """A runner whose TLS-inspecting proxy CA is installed system-wide: tbot would get
    through, and so does the step (here the system store is SSL_CERT_FILE/SSL_CERT_DIR)."""
    ca = private_ca(tmp_path / "ca", name="Inspecting Proxy CA")
    with FaultServer("ok", tls=ca.server_context()) as server:
        opt_in(job, server.url)
        env = {**job.env, "SSL_CERT_FILE": str(ca.ca_file), "SSL_CERT_DIR": str(ca.cert_dir)}
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-X", "utf8", str(REPO / "src" / "run_action.py")],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert server.wait_for_requests(1, timeout=5)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not warnings(done.stdout), done.stdout
    assert telemetry_cell(job.summary) == f"on: event sent to 127.0.0.1:{server.port}"
    [request] = server.requests
    sent = tbot_pb2.SubmitTbotEventRequest.FromString(request.body)
    assert sent.start.helper == "gha:teleport-actions/auth"


@pytest.mark.parametrize(
    "address",
    ["http://telemetry.example.com", "ftp://127.0.0.1", "https://user:pw@example.com"],
    ids=["http-not-loopback", "other-scheme", "credentials"],
)
def test_rejected_endpoint_warns_and_sends_nothing(
    job: Job, capsys: pytest.CaptureFixture[str], address: str
) -> None:
    opt_in(job, address)
    code, log, elapsed = timed_step(capsys)
    warning = authenticated_with_one_warning(job, code, log, elapsed)
    assert "TELEPORT_ANONYMOUS_TELEMETRY_ADDRESS" in warning
    assert "pw" not in warning
    assert "Anonymous telemetry event" not in log
    assert "not sent (endpoint rejected" in job.summary


def test_failed_tbot_sends_nothing_after_the_fact(
    job: Job, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The endpoint holds its `unavailable` answer until tbot has failed and the
    # step starts its grace wait: the retry that answer would allow must not happen.
    job.env["STANDIN_TBOT_FAIL"] = "access denied"
    gate = threading.Event()
    real_wait = Submission.wait

    def wait_releasing_the_answer(self: Submission, timeout: float) -> Outcome:
        gate.set()
        return real_wait(self, timeout)

    monkeypatch.setattr(Submission, "wait", wait_releasing_the_answer)
    with FaultServer("unavailable", gate=gate) as server:
        opt_in(job, server.url)
        code, log, _ = timed_step(capsys)
        assert code == 1
        assert "tbot failed with exit code 1: access denied" in log
        assert gate.is_set()
        for thread in threading.enumerate():
            if thread.name == "telemetry-submission":
                thread.join(timeout=5)
                assert not thread.is_alive()
        assert len(server.requests) == 1


def test_a_run_whose_tbot_fails_is_still_counted(
    job: Job, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # As tbot's own event leaves as tbot starts, before its join can fail. Here
    # the worker is held until the step knows tbot failed: its first attempt
    # still goes out (only a retry would be ruled out).
    job.env["STANDIN_TBOT_FAIL"] = "access denied"
    tbot_failed = threading.Event()
    real_stop, real_encode = Submission.stop_retrying, wire.encode

    def stop_retrying(self: Submission) -> None:
        real_stop(self)
        tbot_failed.set()

    def encode_after_tbot_failed(printed: str) -> bytes:
        assert tbot_failed.wait(5)
        return real_encode(printed)

    monkeypatch.setattr(Submission, "stop_retrying", stop_retrying)
    monkeypatch.setattr(wire, "encode", encode_after_tbot_failed)
    with FaultServer("ok") as server:
        opt_in(job, server.url)
        code, log, _ = timed_step(capsys)
        assert code == 1
        assert "tbot failed with exit code 1: access denied" in log
        assert len(server.requests) == 1
    [request] = server.requests
    event = tbot_pb2.SubmitTbotEventRequest.FromString(request.body)
    assert f"::debug::Anonymous telemetry event {event.distinct_id} sent" in log
    assert not warnings(log)


def test_tbot_is_told_not_to_report(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    with FaultServer("ok") as server:
        opt_in(job, server.url)
        code, log, _ = timed_step(capsys)
        server.wait_for_requests(1, timeout=5)
    assert code == 0, log
    start = next(r for r in job.records if "start" in r["argv"])
    assert start["env"]["TELEPORT_ANONYMOUS_TELEMETRY"] == "0"
    assert start["reported"] is False
    assert len(server.requests) == 1  # exactly once: ours, not tbot's


@pytest.mark.disable_socket
def test_opted_out_step_opens_no_socket(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    # Any socket this process creates raises under the guard; tbot's run is a
    # subprocess, which the stand-in record shows was told not to report.
    job.env["TELEPORT_ANONYMOUS_TELEMETRY_ADDRESS"] = "http://127.0.0.1:9"
    code, log, _ = timed_step(capsys)
    assert code == 0, log
    assert "Anonymous telemetry is not enabled." in log
    assert "| Anonymous telemetry | off |" in job.summary
    start = next(r for r in job.records if "start" in r["argv"])
    assert start["reported"] is False


# What each member's event counts, as the originals' tbot reports it: one
# one-shot output in its own counter (identity has none, so "other"); the
# daemon members configure a service, which tbot does not count at all.
MEMBER_COUNTS: dict[str, tuple[str, dict[str, int]]] = {
    "auth": ("RUN_MODE_ONE_SHOT", {"destinations_other": 1}),
    "k8s": ("RUN_MODE_ONE_SHOT", {"destinations_kubernetes": 1}),
    "application": ("RUN_MODE_ONE_SHOT", {"destinations_application": 1}),
    "database-tunnel": ("RUN_MODE_DAEMON", {}),
    "application-tunnel": ("RUN_MODE_DAEMON", {}),
    "application-proxy": ("RUN_MODE_DAEMON", {}),
}
MEMBER_INPUTS = {
    "kubernetes-cluster": "prod-k8s",
    "app": "grafana",
    "service": "postgres-prod",
    "database": "app",
    "username": "ci",
}
COUNTERS = (
    "destinations_other",
    "destinations_database",
    "destinations_kubernetes",
    "destinations_application",
)


def counted_by_tbots_rule(config: dict[str, Any]) -> dict[str, int]:
    """tbot's rule, written out independently: each `outputs:` entry once,
    application/database/kubernetes in their own counter, any other type as
    "other"; `services:` never."""
    counts = dict.fromkeys(COUNTERS, 0)
    for output in config["outputs"]:
        own = f"destinations_{output['type']}"
        counts[own if own in counts else "destinations_other"] += 1
    return counts


@pytest.mark.parametrize("key", list(MEMBER_COUNTS))
def test_every_member_is_counted_as_tbot_counts_it(key: str, tmp_path: Path) -> None:
    [found] = [m for m in MEMBERS if m.key == key]
    # Free ports: the daemon members check that theirs are free before tbot starts.
    given = {
        **MEMBER_INPUTS,
        "listen": f"tcp://127.0.0.1:{free_port()}",
        "diag-port": str(free_port()),
    }
    own = found.read({env_name(name): value for name, value in given.items()})
    inputs = Inputs("tele.example.com:443", "t", "", (), disable_env_vars=False)
    # The config as the step writes it (and tbot reads it back).
    path = write_config(build_config(inputs, own, tmp_path, oneshot=found.oneshot), tmp_path)
    written = yaml.safe_load(path.read_text(encoding="utf-8"))
    start = build_event(tbot_version="18.6.4", config=written)["start"]

    run_mode, nonzero = MEMBER_COUNTS[key]
    assert start["run_mode"] == run_mode
    counts = {name: start[name] for name in COUNTERS}
    assert counts == counted_by_tbots_rule(written)
    assert counts == {name: nonzero.get(name, 0) for name in COUNTERS}
