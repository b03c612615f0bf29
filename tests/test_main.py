"""The whole step in-process with the tbot stand-in: outputs, env, summary and every error path."""

from __future__ import annotations

import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, TBOT_IDENTITY_FILES, TBOT_SSH_FILES, Job
from step_helpers import errors, run_step, warnings
from teleport_auth.main import main

pytestmark = pytest.mark.step

IDENTITY_FILES = TBOT_IDENTITY_FILES | TBOT_SSH_FILES


def test_success_outputs_env_summary_and_modes(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    code, log = run_step(capsys)
    assert code == 0, log
    destination = Path(job.outputs["destination-dir"])
    assert job.outputs == {
        "identity-file": str(destination / "identity"),
        "ssh-config": str(destination / "ssh_config"),
        "destination-dir": str(destination),
    }
    assert destination.parent == Path(job.env["RUNNER_TEMP"])
    assert job.exported == {
        "TELEPORT_PROXY": "tele.example.com:443",
        "TELEPORT_AUTH_SERVER": "tele.example.com:443",
        "TELEPORT_IDENTITY_FILE": str(destination / "identity"),
    }
    assert stat.S_IMODE(destination.stat().st_mode) == 0o700
    assert {p.name for p in destination.iterdir()} == IDENTITY_FILES
    for path in destination.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    # The config dir (it held the token) is gone; only the identity dir remains.
    assert job.runner_temp_entries() == [destination]
    assert "### Teleport Auth (Machine ID)" in job.summary
    assert "| tbot | 16.4.2 |" in job.summary
    assert f"| Identity file | `{destination / 'identity'}` |" in job.summary
    assert "| Anonymous telemetry | off |" in job.summary
    assert not errors(log)


def test_nothing_masked_and_token_never_printed(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    # As in the original: the token input is the join token's name and the proxy
    # an address; masking them would turn every later `tsh --proxy` line and any
    # output holding them into ***. No message of ours prints the token.
    job.env["RUNNER_DEBUG"] = "1"
    code, log = run_step(capsys)
    assert code == 0, log
    assert "::add-mask::" not in log
    assert "gha-bot-token" not in log
    assert "tele.example.com:443" in log
    # The debug log shows the config with the token redacted.
    assert "token: <redacted>" in log
    assert job.records[-1]["argv"][-1] == "--debug"


def test_tbot_invocation_and_environment(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    # Left over from an earlier auth step: would clash with the config in tbot.
    job.env["TELEPORT_PROXY"] = "old.example.com:443"
    job.env["TELEPORT_AUTH_SERVER"] = "old.example.com:443"
    code, log = run_step(capsys)
    assert code == 0, log
    version_call, start_call = job.records
    assert version_call["argv"][-1] == "version"
    assert not [key for key in version_call["env_keys"] if key.startswith("INPUT_")]
    assert version_call["env"]["TELEPORT_PROXY"] is None
    assert start_call["argv"][-3:-1] == ["start", "-c"]
    assert start_call["argv"][-1].endswith("/bot-config.yaml")
    seen = start_call["env"]
    assert seen["TELEPORT_PROXY"] is None
    assert seen["TELEPORT_AUTH_SERVER"] is None
    assert seen["TELEPORT_ANONYMOUS_TELEMETRY"] == "0"
    assert seen["_TBOT_TELEMETRY_HELPER"] == "gha:teleport-actions/auth"
    assert seen["_TBOT_TELEMETRY_HELPER_VERSION"] == "1.0.0+python"
    assert not [key for key in start_call["env_keys"] if key.startswith("INPUT_")]
    # tbot's output is inside a group, with workflow commands stopped around it.
    assert "::group::tbot start" in log
    assert "::stop-commands::" in log


def test_a_proxy_url_is_used_as_its_address(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    # The original passes it on and tbot keeps the host part: the same address
    # reaches tbot's config and the variables, with one notice saying so.
    job.env["INPUT_PROXY"] = "https://tele.example.com:443/"
    code, log = run_step(capsys)
    assert code == 0, log
    notices = [line for line in log.splitlines() if line.startswith("::notice")]
    assert notices == [
        "::notice::Input 'proxy' is a URL: tbot is given the address tele.example.com:443."
    ]
    assert job.records[-1]["config"]["proxy_server"] == "tele.example.com:443"
    assert job.exported["TELEPORT_PROXY"] == "tele.example.com:443"
    assert job.exported["TELEPORT_AUTH_SERVER"] == "tele.example.com:443"


def test_disable_env_vars(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    job.env["INPUT_DISABLE_ENV_VARS"] = "true"
    code, log = run_step(capsys)
    assert code == 0, log
    assert job.exported == {}
    assert set(job.outputs) == {"identity-file", "ssh-config", "destination-dir"}


def test_optional_inputs_reach_the_config(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    pin = "sha256:" + "12" * 32
    job.env |= {
        "STANDIN_TBOT_VERSION": "17.2.8",
        "INPUT_ALLOW_REISSUE": "true",
        "INPUT_CERTIFICATE_TTL": "30m",
        "INPUT_CA_PINS": pin,
    }
    code, log = run_step(capsys)
    assert code == 0, log
    config = job.records[-1]["config"]
    assert config["certificate_ttl"] == "30m"
    assert config["onboarding"]["ca_pins"] == [pin]
    assert config["outputs"][0]["allow_reissue"] is True


BAD_INPUTS = [
    ("proxy-missing", {"INPUT_PROXY": ""}, "Input 'proxy' is required"),
    ("proxy-scheme", {"INPUT_PROXY": "ftp://tele.example.com"}, "Input 'proxy' must be"),
    ("proxy-url-path", {"INPUT_PROXY": "https://tele.example.com/web"}, "Input 'proxy' must be"),
    ("token-missing", {"INPUT_TOKEN": ""}, "Input 'token' is required"),
    ("ttl", {"INPUT_CERTIFICATE_TTL": "forever"}, "Input 'certificate-ttl'"),
    ("pins", {"INPUT_CA_PINS": "sha256:nope"}, "Input 'ca-pins' line 1"),
    ("reissue", {"INPUT_ALLOW_REISSUE": "yes"}, "Input 'allow-reissue' must be a boolean"),
]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [case[1:] for case in BAD_INPUTS],
    ids=[case[0] for case in BAD_INPUTS],
)
def test_bad_input_fails_before_tbot(
    job: Job, capsys: pytest.CaptureFixture[str], overrides: dict[str, str], message: str
) -> None:
    job.env |= overrides
    code, log = run_step(capsys)
    assert code == 1
    [error] = errors(log)
    assert message in error
    assert "Traceback" not in log
    assert job.records == []  # tbot never ran, not even `tbot version`
    assert job.outputs == {}
    assert job.runner_temp_entries() == []
    assert "Teleport auth failed" in job.summary


def test_bad_telemetry_input_only_warns(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    job.env["INPUT_ANONYMOUS_TELEMETRY"] = "maybe"
    code, log = run_step(capsys)
    assert code == 0, log
    assert any(
        line.startswith("::warning") and "'anonymous-telemetry'" in line
        for line in log.splitlines()
    )
    assert "Anonymous telemetry is not enabled." in log


def test_tbot_missing(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    job.env["PATH"] = str(job.root / "empty-bin")
    code, log = run_step(capsys)
    assert code == 1
    [error] = errors(log)
    assert "tbot was not found on PATH" in error
    assert "teleport-actions/setup" in error
    assert job.outputs == {}


TBOT_VERSION_ERRORS = [
    (
        "too-old",
        {"STANDIN_TBOT_VERSION": "13.4.5"},
        "teleport-actions/auth needs tbot 14.0.0 or newer; the installed tbot is 13.4.5",
    ),
    (
        "reissue-too-old",
        {"STANDIN_TBOT_VERSION": "17.2.7", "INPUT_ALLOW_REISSUE": "true"},
        "Input 'allow-reissue' needs tbot 17.2.8 or newer",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [case[1:] for case in TBOT_VERSION_ERRORS],
    ids=[case[0] for case in TBOT_VERSION_ERRORS],
)
def test_tbot_version_gates(
    job: Job, capsys: pytest.CaptureFixture[str], overrides: dict[str, str], message: str
) -> None:
    job.env |= overrides
    code, log = run_step(capsys)
    assert code == 1
    [error] = errors(log)
    assert message in error
    assert not job.started_tbot


def test_enterprise_version_is_logged(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    job.env["STANDIN_TBOT_EDITION"] = "enterprise"
    code, log = run_step(capsys)
    assert code == 0, log
    assert "Using tbot 16.4.2 (Enterprise)" in log


def test_unreadable_version(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    fake = job.root / "bin" / "tbot"
    fake.write_text("#!/bin/sh\necho 'something else'\n")
    code, log = run_step(capsys)
    assert code == 1
    [error] = errors(log)
    assert "Could not read the version of tbot" in error


def test_tbot_failure_is_reported_with_its_exit_code(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    job.env |= {
        "STANDIN_TBOT_FAIL": "joining the cluster: access denied",
        "STANDIN_TBOT_EXIT_CODE": "3",
    }
    code, log = run_step(capsys)
    assert code == 3
    [error] = errors(log)
    assert error == "::error::tbot failed with exit code 3: joining the cluster: access denied"
    assert job.outputs == {}
    assert job.exported == {}
    assert "Teleport auth failed" in job.summary
    # The config (it holds the token) is gone on the failure path too.
    assert list(Path(job.env["RUNNER_TEMP"]).rglob("bot-config.yaml")) == []


def test_our_error_never_repeats_the_token_tbot_names(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    job.env["STANDIN_TBOT_FAIL"] = "token 'gha-bot-token' not found"
    code = main([])
    log = capsys.readouterr().out
    assert code == 1
    [error] = errors(log)
    assert error == "::error::tbot failed with exit code 1: token '<join token>' not found"
    assert "gha-bot-token" not in job.summary


def test_tbot_output_cannot_issue_workflow_commands(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    # A line of tbot's that looks like a workflow command stays inert: it comes
    # after stop-commands with an unguessable token, and before the resume.
    job.env["STANDIN_TBOT_FAIL"] = "denied\n::error::injected by tbot output"
    code, log = run_step(capsys)
    assert code == 1
    lines = log.splitlines()
    [stop] = [i for i, line in enumerate(lines) if line.startswith("::stop-commands::")]
    token = lines[stop].removeprefix("::stop-commands::")
    assert re.fullmatch(r"[0-9a-f]{32}", token)
    [resume] = [i for i, line in enumerate(lines) if line == f"::{token}::"]
    [injected] = [i for i, line in enumerate(lines) if line == "::error::injected by tbot output"]
    assert stop < injected < resume
    # The step's own error comes after the resume, so it counts.
    [own] = [i for i, line in enumerate(lines) if line.startswith("::error::tbot failed")]
    assert own > resume


@pytest.mark.parametrize(
    "missing",
    [
        ("ACTIONS_ID_TOKEN_REQUEST_URL",),
        ("ACTIONS_ID_TOKEN_REQUEST_TOKEN",),
        ("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
    ],
    ids=["url", "token", "both"],
)
def test_missing_id_token_permission_fails_before_tbot(
    job: Job, capsys: pytest.CaptureFixture[str], missing: tuple[str, ...]
) -> None:
    for name in missing:
        del job.env[name]
    code, log = run_step(capsys)
    assert code == 1
    [error] = errors(log)
    assert "permissions: id-token: write" in error
    assert "forks get no OIDC token" in error
    assert all(name in error for name in missing)
    assert not job.started_tbot
    assert "id-token: write" in job.summary


def test_a_tbot_failure_hint_names_no_permission(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    # With the OIDC variables present, a failed tbot is not about id-token.
    job.env["STANDIN_TBOT_FAIL"] = "token 'x' not found"
    code, log = run_step(capsys)
    assert code != 0
    assert "id-token" not in log
    assert "id-token" not in job.summary


def test_missing_runner_temp(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    job.env["RUNNER_TEMP"] = str(job.root / "does-not-exist")
    code, log = run_step(capsys)
    assert code == 1
    [error] = errors(log)
    assert "RUNNER_TEMP" in error
    assert "does not exist" in error
    assert not job.started_tbot
    assert "Traceback" not in "\n".join(
        line for line in log.splitlines() if "::debug::" not in line
    )


HEAVY = (
    "google.protobuf",
    "requests",
    "urllib3",
    "teleport_auth.telemetry.",
    "teleport_auth._proto",
)
PROBE = """
import sys
from teleport_auth.main import main
code = main([])
heavy = sorted(m for m in sys.modules if m.startswith(HEAVY))
print("LOADED", heavy)
sys.exit(code)
"""


def test_opted_out_run_imports_no_telemetry_stack(job: Job) -> None:
    # A whole opted-out step in a fresh interpreter: what it imported, measured.
    job.env["PYTHONPATH"] = f"{REPO / '_vendor'}:{REPO / 'src'}"
    job.env["INPUT_ANONYMOUS_TELEMETRY"] = "false"
    done = subprocess.run(
        [sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{PROBE}"],
        env=job.env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "LOADED []" in done.stdout.splitlines()


def test_opted_in_run_does_load_it(job: Job) -> None:
    # The control for the test above: the probe does see the stack when it is used.
    job.env["PYTHONPATH"] = f"{REPO / '_vendor'}:{REPO / 'src'}"
    job.env["INPUT_ANONYMOUS_TELEMETRY"] = "true"
    job.env["TELEPORT_ANONYMOUS_TELEMETRY_ADDRESS"] = "http://127.0.0.1:9"  # refused: fine
    done = subprocess.run(
        [sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{PROBE}"],
        env=job.env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    loaded = next(line for line in done.stdout.splitlines() if line.startswith("LOADED"))
    assert "google.protobuf" in loaded
    assert "requests" in loaded


def test_missing_github_output_fails_before_tbot(
    job: Job, capsys: pytest.CaptureFixture[str]
) -> None:
    del job.env["GITHUB_OUTPUT"]
    code, log = run_step(capsys)
    assert code == 1
    [error] = errors(log)
    assert "GITHUB_OUTPUT is not set" in error
    assert not job.started_tbot


def test_tbot_killed_by_a_signal(job: Job, capsys: pytest.CaptureFixture[str]) -> None:
    fake = job.root / "bin" / "tbot"
    fake.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = version ]; then echo "Teleport v16.4.2 git:x go1.22"; exit 0; fi\n'
        "kill -KILL $$\n"
    )
    code, log = run_step(capsys)
    assert code == 128 + 9
    [error] = errors(log)
    assert error == "::error::tbot was killed by SIGKILL"
    # Workflow commands were resumed after tbot's output, so the error above counts.
    stop = next(line for line in log.splitlines() if line.startswith("::stop-commands::"))
    assert f"::{stop.split('::')[2]}::" in log


def test_a_bug_is_one_error_not_a_traceback(
    job: Job, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr("teleport_auth.context.build_config", broken)
    code, log = run_step(capsys)
    assert code == 1
    [error] = errors(log)
    assert error == "::error::Unexpected ZeroDivisionError: division by zero"
    tracebacks = [line for line in log.splitlines() if "Traceback" in line]
    assert tracebacks
    assert all(line.startswith("::debug::") for line in tracebacks)


def test_broken_telemetry_never_fails_the_job(
    job: Job, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from teleport_auth.telemetry import reporter

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("telemetry bug")

    monkeypatch.setattr(reporter, "start", broken)
    job.env["INPUT_ANONYMOUS_TELEMETRY"] = "true"
    code, log = run_step(capsys)
    assert code == 0, log
    [warning] = warnings(log)
    assert "RuntimeError: telemetry bug" in warning
    assert "Authentication is not affected." in warning
    assert "TELEPORT_IDENTITY_FILE" in job.exported
