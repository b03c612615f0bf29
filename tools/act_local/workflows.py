"""What act needs to know about a repository's workflows before it runs them.

Which refs of this action they use (act's ``--local-repository`` matches the
exact ``owner/repo@ref``, so each ref needs its own mapping), which members
(the daemon ones need a newer stand-in), and which runner labels their jobs
ask for (each one is mapped to this host).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ACTION_REPO = "teleport-actions/auth"
# `uses: teleport-actions/auth@v1` or `uses: teleport-actions/auth/k8s@v1`, quoted or not.
_OURS = re.compile(
    r"""^[ \t]*(?:-[ \t]*)?uses:[ \t]*["']?"""
    r"""(?P<repo>teleport-actions/auth)(?:/(?P<member>[^@\s"'#]+))?@(?P<ref>[^\s"'#]+)""",
    re.IGNORECASE | re.MULTILINE,
)
# A local action (`uses: ./path`), which may itself use ours.
_LOCAL = re.compile(r"""^[ \t]*(?:-[ \t]*)?uses:[ \t]*["']?\./(?P<path>[^\s"'#]*)""", re.MULTILINE)
_MATRIX_REF = re.compile(r"^\$\{\{\s*matrix\.([A-Za-z0-9_-]+)\s*\}\}$")


class WorkflowError(Exception):
    """A workflow path that does not exist or holds no workflow: said in one line."""


@dataclass(frozen=True)
class Usage:
    """One `uses:` of this action: its repository as spelled, member ("" = root), ref."""

    repo: str
    member: str
    ref: str
    file: Path

    @property
    def uses(self) -> str:
        path = f"{self.repo}/{self.member}" if self.member else self.repo
        return f"{path}@{self.ref}"


@dataclass
class Scan:
    workflows: list[Path]
    usages: list[Usage] = field(default_factory=list)
    labels: set[str] = field(default_factory=set)

    def mappings(self) -> list[str]:
        """The distinct ``owner/repo@ref`` act must map to this checkout, in order found."""
        seen: dict[str, None] = {}
        for usage in self.usages:
            seen.setdefault(f"{usage.repo}@{usage.ref}", None)
        return list(seen)

    def members(self) -> set[str]:
        return {usage.member for usage in self.usages}


def workflow_files(repository: Path, workflows: Path | None) -> list[Path]:
    """The workflow files act will read: ``-W`` (a file or a folder) or the repository's."""
    where = workflows if workflows is not None else repository / ".github" / "workflows"
    if where.is_file():
        return [where]
    if not where.is_dir():
        raise WorkflowError(f"no workflow file or folder at {where}")
    found = sorted(p for p in where.iterdir() if p.suffix in (".yml", ".yaml") and p.is_file())
    if not found:
        raise WorkflowError(f"no workflow files (*.yml, *.yaml) in {where}")
    return found


def scan(repository: Path, files: Iterable[Path]) -> Scan:
    """Our usages in the workflows and in the local actions they use, and their jobs' labels."""
    result = Scan(workflows=list(files))
    done: set[Path] = set()
    queue = list(result.workflows)
    while queue:
        path = queue.pop(0).resolve()
        if path in done:
            continue
        done.add(path)
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in _OURS.finditer(text):
            result.usages.append(Usage(match["repo"], match["member"] or "", match["ref"], path))
        for match in _LOCAL.finditer(text):
            # GitHub resolves ./ against the workspace, the repository's root.
            folder = repository / match["path"]
            queue += [folder / name for name in ("action.yml", "action.yaml")]
        queue = [p for p in queue if p.is_file()]
    for path in result.workflows:
        result.labels |= set(runner_labels(path))
    return result


def runner_labels(path: Path) -> Iterator[str]:
    """The labels a workflow's jobs run on, including those a matrix spells out."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8", errors="replace"))
    except yaml.YAMLError:
        return  # act reports the file itself, better than we could
    jobs = document.get("jobs") if isinstance(document, dict) else None
    if not isinstance(jobs, dict):
        return
    for job in jobs.values():
        if isinstance(job, dict):
            yield from _job_labels(job)


def _job_labels(job: dict[str, Any]) -> Iterator[str]:
    runs_on = job.get("runs-on")
    if isinstance(runs_on, dict):
        runs_on = runs_on.get("labels")
    values = runs_on if isinstance(runs_on, list) else [runs_on]
    for value in values:
        if not isinstance(value, str):
            continue
        matrix_key = _MATRIX_REF.match(value.strip())
        if matrix_key:
            yield from _matrix_values(job, matrix_key.group(1))
        elif "${{" not in value:
            yield value.strip()


def _matrix_values(job: dict[str, Any], key: str) -> Iterator[str]:
    strategy = job.get("strategy")
    matrix = strategy.get("matrix") if isinstance(strategy, dict) else None
    if not isinstance(matrix, dict):
        return
    listed = matrix.get(key)
    for value in listed if isinstance(listed, list) else []:
        if isinstance(value, str):
            yield value
    for extra in matrix.get("include") or []:
        if isinstance(extra, dict) and isinstance(extra.get(key), str):
            yield extra[key]
