"""The original JavaScript action as the anchor (``--anchor PATH``, a checkout of it).

It runs through the same act set-up as this project's action: a workspace holding
its files at the root and the demo workflow (``uses: ./``, the same step name and
inputs), the same instant tbot, the same job environment. act runs a
``using: nodeNN`` action with the ``node`` on the host's PATH whatever NN says; if
this act refuses the checkout's ``using:``, the workspace copy is rewritten to the
newest node version act names, and the report says so.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from steptime.harness import DEMO_WORKFLOW
from steptime.model import BenchError

_USING = re.compile(r"^(?P<indent>\s+)using:\s*['\"]?(?P<value>[\w.-]+)['\"]?\s*$", re.MULTILINE)
_MAIN = re.compile(r"^\s+main:\s*['\"]?(?P<value>[^'\"\s]+)['\"]?\s*$", re.MULTILINE)
# act's message for a runs.using it does not know.
_REFUSED = re.compile(r"runs\.using key in action\.yml must be one of: \[(?P<known>[^\]]*)\]")


@dataclass
class Anchor:
    source: Path  # the checkout given with --anchor
    workspace: Path
    revision: str  # "<short sha> <subject>" of the checkout, when it is a git checkout
    using: str  # runs.using as checked out
    ran_as: str  # runs.using act ran (the same unless act refused it)
    node: str = ""  # the interpreter seen from inside the step (tbot's parent)
    node_version: str = ""

    @property
    def using_note(self) -> str:
        if self.ran_as == self.using:
            return f"runs.using: {self.using} as checked out (this act accepts it)"
        return (
            f"runs.using: {self.using} in the checkout, which this act refuses: "
            f"rewritten to {self.ran_as} in the benchmark's copy"
        )


def _commit(dest: Path, message: str) -> None:
    # act reads the git metadata (ref, sha) for the github context.
    git = ["git", "-C", str(dest), "-c", "user.name=act", "-c", "user.email=act@localhost"]
    if not (dest / ".git").exists():
        subprocess.run([*git, "init", "-q"], check=True, timeout=60)
    subprocess.run([*git, "add", "-A"], check=True, timeout=60)
    subprocess.run([*git, "commit", "-q", "--no-gpg-sign", "-m", message], check=True, timeout=60)


def _revision(source: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(source), "log", "-1", "--format=%h %s"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return done.stdout.strip() if done.returncode == 0 else "(not a git checkout)"


def read_runs(action_yml: str) -> tuple[str, str]:
    """``runs.using`` and ``runs.main`` of a JavaScript action's action.yml."""
    using, main = _USING.search(action_yml), _MAIN.search(action_yml)
    if using is None or not using["value"].startswith("node") or main is None:
        raise BenchError("--anchor: action.yml is not a JavaScript action (runs.using: nodeNN)")
    return using["value"], main["value"]


def prepare_anchor(source: Path, dest: Path) -> Anchor:
    """A workspace with the original's files at the root and the demo workflow."""
    action_yml = source / "action.yml"
    if not action_yml.is_file():
        raise BenchError(f"--anchor {source}: no action.yml there (a checkout of the original?)")
    using, main = read_runs(action_yml.read_text(encoding="utf-8"))
    if not (source / main).is_file():
        raise BenchError(f"--anchor {source}: runs.main {main} is missing")
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(".git"))
    workflows = dest / ".github" / "workflows"
    if workflows.exists():
        shutil.rmtree(workflows)  # its own CI workflows must not run under act
    workflows.mkdir(parents=True)
    shutil.copy2(DEMO_WORKFLOW, workflows / "demo.yml")
    _commit(dest, "original action")
    return Anchor(source, dest, _revision(source), using, using)


def refused_using(log: str) -> list[str] | None:
    """The node versions act lists when it refuses an action's runs.using, else None."""
    match = _REFUSED.search(log)
    if match is None:
        return None
    return [v for v in match["known"].split() if re.fullmatch(r"node\d+", v)]


def rewrite_using(anchor: Anchor, known: list[str]) -> None:
    """Run the copy with the newest node version act knows (said in the report)."""
    if not known:
        raise BenchError("act knows no node runtime to run the original with")
    newest = max(known, key=lambda v: int(v[4:]))
    path = anchor.workspace / "action.yml"
    text = path.read_text(encoding="utf-8")
    path.write_text(_USING.sub(rf"\g<indent>using: {newest}", text, count=1), encoding="utf-8")
    _commit(anchor.workspace, f"runs.using: {newest} for this act")
    anchor.ran_as = newest


def describe_node(anchor: Anchor, probe: dict[str, str]) -> None:
    """Which node ran the original (tbot's parent) and its version."""
    anchor.node = probe.get("parent", "")
    if not anchor.node:
        raise BenchError("the original's run left no probe of its interpreter")
    done = subprocess.run(
        [anchor.node, "--version"], capture_output=True, text=True, check=False, timeout=60
    )
    anchor.node_version = done.stdout.strip() or "(unknown version)"
