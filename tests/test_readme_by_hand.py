"""The by-hand lines of docs/local-runs.md (act without scripts/dev act) work verbatim,
from a user's repository.

The test runs exactly the lines of that block (with ``AUTH`` set to this
checkout, as the document asks) in a throwaway repository whose workflow uses
``teleport-actions/auth@v1`` and ``teleport-actions/auth/k8s@v1``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from throwaway_repo import make_repo

REPO = Path(__file__).resolve().parent.parent


def by_hand_block() -> str:
    doc = (REPO / "docs" / "local-runs.md").read_text()
    _, sep, after = doc.partition("By hand, for any workflow of yours that uses this action")
    assert sep, "docs/local-runs.md has no by-hand paragraph"
    block = re.search(r"```sh\n(.*?)```", after, re.DOTALL)
    assert block, "the by-hand paragraph has no sh block"
    return block.group(1)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.act
def test_readme_by_hand_lines_run_verbatim(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "their-repo")
    (tmp_path / "tmp").mkdir()
    venv_bin = str(REPO / ".venv" / "bin")
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env |= {
        "AUTH": str(REPO),
        # A user's shell: the dev venv is not on PATH.
        "PATH": os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if p != venv_bin),
        # Where the block's mktemp and act's cache go: this test's directory.
        "TMPDIR": str(tmp_path / "tmp"),
        "XDG_CACHE_HOME": str(tmp_path / "act-cache"),
        # act's version check would query the internet.
        "ACT_DISABLE_VERSION_CHECK": "1",
    }
    process = subprocess.Popen(
        ["bash", "-e", "-c", by_hand_block()],
        cwd=repo,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = process.communicate(timeout=600)
        # The block's own `kill $!` stops its collector (which may take a moment).
        deadline = time.monotonic() + 30
        while group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        left_behind = group_alive(process.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == 0, out
    assert not left_behind, "the by-hand lines left a process running"
    assert "Job succeeded" in out, out
    assert "Job failed" not in out
    assert "building its runtime packages" not in out
    assert "identity file read: " in out
    events = [json.loads(line) for line in out.splitlines() if line.startswith('{"event"')]
    assert [e["properties"]["tbot.helper"] for e in events] == [
        "gha:teleport-actions/auth",
        "gha:teleport-actions/auth-k8s",
    ]
