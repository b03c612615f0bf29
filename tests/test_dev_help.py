"""``python3 scripts/dev`` explains itself, and the collector keeps its events out of the way."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tbot_collector import storage
from tbot_collector.storage import DEFAULT_OUTPUT

REPO = Path(__file__).resolve().parent.parent
DEV = REPO / "scripts" / "dev"
# What .ci/run and the README call: each must stay a command.
COMMANDS = (
    "test",
    "lint",
    "act",
    "collector",
    "demo",
    "bench",
    "interpreters",
    "mutate",
    "proto",
    "setup",
)


def dev(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DEV), *args],
        cwd=cwd, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def listed(text: str) -> list[str]:
    """The command names of the list, one line each."""
    _, sep, rest = text.partition("commands:\n")
    assert sep, text
    return re.findall(r"^  (\S+)", rest, re.MULTILINE)


@pytest.mark.parametrize("flag", ["--help", "-h", "help"])
def test_help_lists_every_command_one_line_each(flag: str) -> None:
    done = dev(flag)
    assert done.returncode == 0, done.stderr
    assert listed(done.stdout) == [*COMMANDS, "help"]
    lines = done.stdout.split("commands:\n", 1)[1].splitlines()
    assert len(lines) == len(COMMANDS) + 1
    assert all(len(line.split(None, 1)) == 2 for line in lines)  # a name and what it does


def test_bare_dev_prints_the_list_instead_of_running_the_suite(tmp_path: Path) -> None:
    done = dev(cwd=tmp_path)
    assert done.returncode == 2
    assert "no command given" in done.stdout
    assert listed(done.stdout) == [*COMMANDS, "help"]
    assert "passed" not in done.stdout + done.stderr
    assert "pytest" not in done.stdout + done.stderr


def test_unknown_command_says_so_with_the_list() -> None:
    done = dev("tests")
    assert done.returncode == 2
    assert "dev: unknown command 'tests'" in done.stderr
    assert listed(done.stderr) == [*COMMANDS, "help"]


def test_collector_stores_events_in_a_git_ignored_folder_of_the_checkout() -> None:
    path = Path(DEFAULT_OUTPUT)
    assert path == REPO / ".collector" / "tbot-events.jsonl"
    ignored = subprocess.run(
        ["git", "-C", str(REPO), "check-ignore", "-q", str(path)], check=False, timeout=60
    )
    assert ignored.returncode == 0, "the collector's default store is not git-ignored"
    # --help says where.
    assert str(path) in " ".join(dev("collector", "--help").stdout.split())


def test_collector_makes_its_default_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = tmp_path / ".collector" / "tbot-events.jsonl"
    monkeypatch.setattr(storage, "DEFAULT_OUTPUT", str(default))
    store = storage.Store(default)
    try:
        store.append({"event": "tbot.start"})
    finally:
        store.close()
    assert default.read_text().strip() == '{"event": "tbot.start"}'
    assert oct(default.parent.stat().st_mode & 0o777) == oct(0o700)
