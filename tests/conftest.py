"""Shared fixtures: a job environment with the tbot stand-in, and the runner's files."""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import uuid
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from citations import is_cited
from standin.install import install_standin

# Fixtures shared by several modules (the stand-in, its bin directory, collectors).
pytest_plugins = ("shared_fixtures",)

REPO = Path(__file__).resolve().parent.parent

# What real tbot writes into an identity output's directory, each file 0600
# (docs/compatibility.md, tbot: files): the oracle for the stand-in's tests and the action's.
TBOT_IDENTITY_FILES = frozenset(
    {
        "identity",
        "key",
        "key.pub",
        "key-cert.pub",
        "tlscert",
        "teleport-host-ca.crt",
        "teleport-user-ca.crt",
        "teleport-database-ca.crt",
    }
)
# ...and with ssh_config on (the default).
TBOT_SSH_FILES = frozenset({"known_hosts", "ssh_config"})
# A kubernetes output writes the identity files and its kubeconfig, no SSH files.
TBOT_KUBECONFIG_FILE = "kubeconfig.yaml"
TBOT_KUBERNETES_FILES = TBOT_IDENTITY_FILES | {TBOT_KUBECONFIG_FILE}
# An application output writes the identity files (`tlscert` and `key` among them)...
TBOT_APPLICATION_FILES = TBOT_IDENTITY_FILES
# ...and these too with `specific_tls_naming: true`.
TBOT_SPECIFIC_TLS_FILES = frozenset({"tls.crt", "tls.key", "tls.cas"})


# Under CI (``CI=true``, as GitHub Actions and .ci/run set it). Read once: the
# job fixture replaces os.environ with the simulated job's.
ON_CI = os.environ.get("CI", "").strip().lower() == "true"


def require(condition: object, reason: str) -> None:
    """Skip the test unless ``condition`` holds; under CI, fail it instead.

    A promise test that cannot run where the promise is checked must not pass
    for a skip: CI provides what these tests need, so a miss there is a failure.
    """
    if condition:
        return
    if ON_CI:
        pytest.fail(f"{reason} (CI=true: a test may not skip for want of it)", pytrace=False)
    pytest.skip(reason)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Under CI, a test the documents cite as proof fails instead of skipping."""
    report = yield
    if not (ON_CI and report.skipped) or hasattr(report, "wasxfail"):
        return report
    if is_cited(item.path.name, getattr(item, "originalname", item.name)):
        why = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} is cited as proof by the documents (tests/citations.py): "
            f"under CI=true it may not skip ({why})"
        )
    return report


def parse_file_commands(text: str) -> dict[str, str]:
    """Parse the GITHUB_OUTPUT / GITHUB_ENV format: ``name<<DELIM\\nvalue\\nDELIM``."""
    values: dict[str, str] = {}
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        heredoc = re.fullmatch(r"([^=<]+)<<(.+)", lines[i])
        if heredoc:
            name, delimiter = heredoc.groups()
            end = lines.index(delimiter, i + 1)
            values[name] = "\n".join(lines[i + 1 : end])
            i = end + 1
        else:
            name, _, value = lines[i].partition("=")
            values[name] = value
            i += 1
    return values


def assert_token_never_printed(log: str) -> None:
    """No line of ours shows the join token, and nothing is registered as a secret:
    as in the original, the token name and the proxy are not masked."""
    assert [line for line in log.splitlines() if line.startswith("::add-mask::")] == []
    token = os.environ.get("INPUT_TOKEN", "").strip()
    if not token:
        return
    assert [line for line in log.splitlines() if token in line] == []
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary and Path(summary).exists():
        assert token not in Path(summary).read_text()


@dataclass
class Job:
    """One simulated job step: its environment and the runner's file commands."""

    env: dict[str, str]
    root: Path

    @property
    def outputs(self) -> dict[str, str]:
        return parse_file_commands(Path(self.env["GITHUB_OUTPUT"]).read_text())

    @property
    def exported(self) -> dict[str, str]:
        return parse_file_commands(Path(self.env["GITHUB_ENV"]).read_text())

    @property
    def summary(self) -> str:
        return Path(self.env["GITHUB_STEP_SUMMARY"]).read_text()

    @property
    def records(self) -> list[dict[str, Any]]:
        """One entry per tbot invocation, as the stand-in recorded it."""
        path = Path(self.env["STANDIN_TBOT_RECORD"])
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    @property
    def started_tbot(self) -> bool:
        return any("start" in record["argv"] for record in self.records)

    def runner_temp_entries(self) -> list[Path]:
        return sorted(Path(self.env["RUNNER_TEMP"]).iterdir())


# Every tbot stand-in started by this test run carries this in its environment.
SESSION_MARKER = f"pytest-{os.getpid()}-{uuid.uuid4().hex}"
os.environ["STANDIN_TBOT_SESSION"] = SESSION_MARKER


def standin_daemons() -> list[int]:
    """Pids of stand-in tbot processes of this test run that are still alive."""
    script = str(REPO / "tests" / "standin" / "tbot.py").encode()
    marker = f"STANDIN_TBOT_SESSION={SESSION_MARKER}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and script in cmdline and marker in environ:
            found.append(int(entry.name))
    return found


def gone_within(pid: int, seconds: float = 10.0) -> bool:
    """Whether process ``pid`` exits within ``seconds`` (a zombie counts as gone).

    Waits on a pidfd, which becomes readable when the process exits: no polling,
    and a process still finishing its shutdown (the stand-in needs ~100 ms after
    SIGTERM) is waited for rather than reported alive.
    """
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(int(seconds * 1000)))
    finally:
        os.close(fd)


@pytest.fixture(scope="session", autouse=True)
def no_tbot_outlives_the_suite() -> Iterator[None]:
    """Every test ends every tbot it started: the run fails if one is still alive at its end."""
    yield
    leftovers = standin_daemons()
    for pid in leftovers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    assert leftovers == [], f"tbot stand-ins still running after the tests: {leftovers}"


@pytest.fixture
def job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, goyaml_binary: Path | None) -> Job:
    """A job with the stand-in tbot on PATH; ``os.environ`` is replaced for the test.

    Where Go is installed the stand-in reads every config with yaml.v3 too, as tbot does.
    """
    bin_dir = tmp_path / "bin"
    install_standin(bin_dir)
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    files = {}
    for name in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_STEP_SUMMARY"):
        path = tmp_path / name.lower()
        path.touch()
        files[name] = str(path)
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": os.environ.get("HOME", str(tmp_path)),
        "RUNNER_TEMP": str(runner_temp),
        "RUNNER_OS": "Linux",
        "GITHUB_ACTIONS": "true",
        "ACTIONS_ID_TOKEN_REQUEST_URL": "http://127.0.0.1:9/token",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-token",
        "STANDIN_TBOT_RECORD": str(tmp_path / "tbot-record.jsonl"),
        # Should a test opt in by mistake, nothing leaves the machine (port 9: refused).
        "TELEPORT_ANONYMOUS_TELEMETRY_ADDRESS": "http://127.0.0.1:9",
        "INPUT_PROXY": "tele.example.com:443",
        "INPUT_TOKEN": "gha-bot-token",
        "STANDIN_TBOT_SESSION": SESSION_MARKER,
        # A daemon left behind by a failing test still stops by itself.
        "STANDIN_TBOT_MAX_LIFETIME": "120",
        **files,
    }
    if goyaml_binary is not None:
        env["STANDIN_TBOT_GOYAML"] = str(goyaml_binary)
    monkeypatch.setattr(os, "environ", env)
    return Job(env=env, root=tmp_path)
