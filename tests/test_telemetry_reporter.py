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

import pytest

from conftest import REPO

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
