"""The processes around an act run: the collector, the tbot on PATH and its CA, leftover daemons."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# A safety net: the collector stops by itself even if this run is killed outright.
COLLECTOR_EXIT_AFTER = 6 * 3600
# A tbot's command line: the binary itself, or the stand-in's script run by python.
_TBOT_NAMES = (b"tbot", b"tbot.py")


class SetupError(Exception):
    """Something this run needs could not be prepared: said in one line."""


@dataclass
class Collector:
    """``python3 scripts/dev collector`` on 127.0.0.1, a free port, events in a JSONL file."""

    process: subprocess.Popen[bytes]
    url: str
    events_path: Path

    @classmethod
    def start(cls, work: Path) -> Collector:
        port_file = work / "collector.port"
        events = work / "events.jsonl"
        process = subprocess.Popen(
            [
                # scripts/dev execs the collector: this child is the collector itself.
                *(sys.executable, str(ROOT / "scripts" / "dev"), "collector"),
                *("--host", "127.0.0.1", "--port", "0", "--port-file", str(port_file)),
                *("--output", str(events), "--quiet"),
                *("--exit-after", str(COLLECTOR_EXIT_AFTER)),
            ],
            stdin=subprocess.DEVNULL,
            # Its "listening" line is ours to print; its errors (stderr) show.
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise SetupError("the collector did not start (see its message above)")
            time.sleep(0.05)
        return cls(process, f"http://127.0.0.1:{port_file.read_text().strip()}", events)

    def events(self) -> list[dict[str, Any]]:
        if not self.events_path.exists():
            return []
        lines = self.events_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def put_tbot_on_path(bin_dir: Path, tbot: Path | None) -> str:
    """``bin_dir/tbot``: the given tbot, or the stand-in. Returns what it is, for the log."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    if tbot is not None:
        if not (tbot.is_file() and os.access(tbot, os.X_OK)):
            raise SetupError(f"--tbot {tbot}: not an executable file")
        (bin_dir / "tbot").symlink_to(tbot.resolve())
        return str(tbot.resolve())
    installer = ROOT / "tests" / "standin" / "install.py"
    subprocess.run(
        [sys.executable, str(installer), str(bin_dir)],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=60,
    )
    return f"the tbot stand-in ({installer.parent / 'tbot.py'})"


def make_throwaway_ca(folder: Path) -> None:
    """A CA for this run only, which signs the stand-in's certificates (tests/standin/pki.py)."""
    subprocess.run(
        [sys.executable, "-I", str(ROOT / "tests" / "standin" / "pki.py"), str(folder)],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=60,
    )


def _stop(pid: int) -> None:
    """SIGTERM, then SIGKILL if it is still there after a bounded wait."""
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop_tbots_under(folder: Path) -> list[int]:
    """End every tbot whose command line names a path under ``folder``; returns their pids.

    A daemon member's tbot reads its config from the job's RUNNER_TEMP, which is
    under this run's private folder: this finds the ones a job left behind even
    when the run was cut short (Ctrl-C, a failed job) and reported no pid.
    """
    needle = str(folder).encode()
    stopped = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        args = cmdline.split(b"\0")
        if any(os.path.basename(a) in _TBOT_NAMES for a in args) and needle in cmdline:
            _stop(int(entry.name))
            stopped.append(int(entry.name))
    return stopped


def stop_leftover_tbot(pid_text: str, job: str) -> str | None:
    """End a daemon tbot a job left running, as GitHub's runner ends a job's processes.

    Only a live process whose command line names tbot, with the pid one of our
    steps reported: a pid reused since is left alone.
    """
    try:
        pid = int(pid_text)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (ValueError, OSError):
        return None
    if pid <= 1 or b"tbot" not in cmdline:
        return None
    _stop(pid)
    return f"act: stopped tbot (pid {pid}) left running by job {job}, as GitHub's runner would"
