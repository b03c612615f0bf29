"""The step's side of telemetry costs next to nothing before tbot starts.

What the step does on its own thread when opted in (build the event, print
it, start the worker) loads none of the HTTP, TLS or protobuf stack: the
worker does that alongside tbot. Checked in a fresh interpreter started as the
step's is (``-I -S``: the standard library plus the action's own paths).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from conftest import REPO
from teleport_auth.telemetry import reporter, sender
from teleport_auth.telemetry.result import CallResult

pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

HEAVY = (
    "google.protobuf",
    "requests",
    "urllib3",
    "truststore",
    "ssl",  # TLS is the worker's business too
    "teleport_auth._proto",
    "teleport_auth.telemetry.connect",
    "teleport_auth.telemetry.tls",
    "teleport_auth.telemetry.wire",
)

PROBE = """
import json, sys
sys.path[:0] = PATHS
from teleport_auth.telemetry import reporter, sender
from teleport_auth.telemetry.result import CallResult

def loaded():
    return sorted(m for m in sys.modules if m.startswith(HEAVY))

after_import = loaded()
# The main thread's whole part: resolve the endpoint, build and print the event.
real_start = sender.Submission.start
sender.Submission.start = lambda self: None
CONFIG = {"oneshot": True, "onboarding": {"join_method": "github"}, "outputs": []}
started = reporter.start("16.4.2", CONFIG, ENV, helper="h", helper_version="1")
after_start = loaded()
# The control: the worker, once run, does load the stack.
sender.Submission.start = real_start
started._submission.start()
started._submission.wait(10)
print("RESULT", json.dumps([after_import, after_start, loaded()]))
"""


@pytest.mark.launched
def test_the_main_threads_part_loads_no_heavy_module() -> None:
    env = {"TELEPORT_ANONYMOUS_TELEMETRY_ADDRESS": "http://127.0.0.1:9"}  # refused: fine
    paths = [str(REPO / "_vendor"), str(REPO / "src")]
    code = f"HEAVY = {HEAVY!r}\nPATHS = {paths!r}\nENV = {env!r}\n{PROBE}"
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))
    after_import, after_start, after_worker = json.loads(result.removeprefix("RESULT "))
    assert after_import == []
    assert after_start == []
    assert "google.protobuf" in after_worker
    assert "requests" in after_worker
    assert "truststore" in after_worker
    # What the main thread printed is the event, ready before any of that loaded.
    assert "::group::Anonymous telemetry event" in done.stdout


# --- the grace: how long the step waits for the event once tbot has exited ----------


class RecordingSubmission(sender.Submission):
    """A submission that records what the reporter asks of it."""

    def __init__(self) -> None:
        super().__init__(base_url="http://127.0.0.1:9", event_json="{}")
        self.calls: list[tuple[str, float | None]] = []

    def wait(self, timeout: float) -> sender.Outcome:
        self.calls.append(("wait", timeout))
        return super().wait(timeout)

    def cancel(self) -> None:
        self.calls.append(("cancel", None))
        super().cancel()

    def stop_retrying(self) -> None:
        self.calls.append(("stop_retrying", None))
        super().stop_retrying()


def test_the_grace_keeps_the_step_within_one_second_of_tbot() -> None:
    # README promises at most 1 s added to the step once tbot exits; the step's
    # own exit needs part of that second, so the wait itself is at most 0.9 s.
    assert 0 < reporter.GRACE_SECONDS <= 0.9


@pytest.mark.parametrize("tbot_succeeded", [True, False])
def test_the_step_waits_the_grace_then_cancels(tbot_succeeded: bool) -> None:
    submission = RecordingSubmission()
    found = reporter.Reporter(submission, "example.com", "id")
    assert found.finish(tbot_succeeded=tbot_succeeded).startswith("on: not sent to example.com")
    # One bounded wait, then no attempt may start: the outcome read after it is final.
    waits = [("wait", reporter.GRACE_SECONDS), ("cancel", None), ("wait", 0)]
    assert submission.calls == ([] if tbot_succeeded else [("stop_retrying", None)]) + waits


# A one-shot config with one identity output, typed loosely for the test.
CONFIG: Any = {
    "oneshot": True,
    "onboarding": {"join_method": "github"},
    "outputs": [{"type": "identity"}],
}


class DecidedSubmission(RecordingSubmission):
    """A submission whose outcome is given."""

    def __init__(self, outcome: sender.Outcome) -> None:
        super().__init__()
        self.outcome = outcome

    def wait(self, timeout: float) -> sender.Outcome:
        super().wait(timeout)
        return self.outcome


def test_a_confirmed_event_is_one_debug_line(capsys: pytest.CaptureFixture[str]) -> None:
    result = CallResult(ok=True, code="", message="", http_status=200, sent=True, retryable=False)
    confirmed = sender.Outcome(
        delivery="confirmed",
        result=result,
        attempts=1,
        duration=1.25,
        in_flight=False,
        finished=True,
    )
    found = reporter.Reporter(DecidedSubmission(confirmed), "example.com", "the-id")
    assert found.finish(tbot_succeeded=True) == "on: event sent to example.com"
    assert capsys.readouterr().out == (
        "::debug::Anonymous telemetry event the-id sent to example.com in 1250 ms (1 attempt(s)).\n"
    )


def test_a_failure_is_one_titled_warning(capsys: pytest.CaptureFixture[str]) -> None:
    found = reporter.Reporter(RecordingSubmission(), "example.com", "the-id")
    found.finish(tbot_succeeded=True)
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith("::warning title=Anonymous telemetry::")


def test_a_rejected_endpoint_is_one_titled_warning_and_nothing_sent(
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = {"TELEPORT_ANONYMOUS_TELEMETRY_ADDRESS": "http://telemetry.example.com"}
    assert reporter.start("16.4.2", CONFIG, env, helper="gha:x", helper_version="1") == (
        "on: not sent (endpoint rejected, see the warning above)"
    )
    assert capsys.readouterr().out == (
        "::warning title=Anonymous telemetry::TELEPORT_ANONYMOUS_TELEMETRY_ADDRESS must be an "
        "https:// URL (plain http:// is only allowed to loopback). "
        "Anonymous telemetry is not sent.\n"
    )


def test_the_log_says_why_tbots_own_telemetry_line_says_off(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sender.Submission, "start", lambda self: None)
    env = {"TELEPORT_ANONYMOUS_TELEMETRY_ADDRESS": "http://127.0.0.1:9"}
    started = reporter.start("16.4.2", CONFIG, env, helper="gha:x", helper_version="1")
    assert isinstance(started, reporter.Reporter)
    assert (
        "This step sends the event itself and runs tbot with TELEPORT_ANONYMOUS_TELEMETRY=0, "
        "so tbot's own telemetry line below says it is not enabled: each run is counted once."
    ) in capsys.readouterr().out.splitlines()
