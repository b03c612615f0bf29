"""What act needs to know about a repository's workflows before it runs them.

Everything a run reaches counts: the workflows selected (``-W``, else all of
them), the reusable workflows their jobs call (``uses: ./.github/workflows/x.yml``)
and the local actions their steps use (``uses: ./path``), recursively, and the
actions of this checkout those use in turn (a member may use a helper folder of
this repository at a fixed ref). From those it reads:

- each reference to the originals (``teleport-actions/auth[/folder]@REF``,
  ``teleport-actions/auth-k8s@REF`` and the other siblings, and
  ``teleport-actions/setup@REF``): act's ``--local-repository`` matches the exact
  ``owner/repo@ref``, so each one needs its own mapping;
- the runner labels the jobs ask for (each one is mapped to this host);
- which jobs GitHub would give an OIDC token: those whose effective
  permissions grant ``id-token: write``;
- each ``with:`` key an action does not declare, which GitHub warns about.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from teleport_auth.family import MEMBERS

CHECKOUT = Path(__file__).resolve().parents[2]
THIS_REPO = "teleport-actions/auth"
SETUP_REPO = "teleport-actions/setup"
# The originals' names (teleport-actions/auth-k8s, ...) -> the member folder that replaces them.
ORIGINALS = {m.original: m.folder for m in MEMBERS if m.folder}
MEMBER_FOLDERS = frozenset(m.folder for m in MEMBERS)
# The setup stand-in's action.yml: its inputs are the original's.
SETUP_STANDIN = Path(__file__).resolve().parent / "setup_standin"

_USES = re.compile(r"^(?P<owner>[^/@\s]+)/(?P<name>[^/@\s]+)(?:/(?P<sub>[^@\s]+))?@(?P<ref>\S+)$")
_MATRIX_REF = re.compile(r"^\$\{\{\s*matrix\.([A-Za-z0-9_-]+)\s*\}\}$")
# Docker actions take these under `with:` without declaring them.
_DOCKER_WITH = ("args", "entrypoint")


class WorkflowError(Exception):
    """A workflow path that does not exist or holds no workflow: said in one line."""


@dataclass(frozen=True)
class Reference:
    """A ``uses:`` that this run serves from this checkout or a stand-in.

    ``kind`` is ``checkout`` (``teleport-actions/auth`` and any folder of it),
    ``member`` (an original's own name, e.g. ``teleport-actions/auth-k8s``) or
    ``setup``; ``folder`` is the checkout folder that runs ("" = the root).
    """

    uses: str
    repo: str
    sub: str
    ref: str
    kind: str
    folder: str

    @property
    def mapping(self) -> str:
        return f"{self.repo}@{self.ref}"

    def describe(self) -> str:
        if self.kind == "setup":
            return "a local stand-in that installs and downloads nothing"
        if self.folder in MEMBER_FOLDERS:
            return f"this checkout's {self.folder or 'auth'} member"
        return f"this checkout's {self.folder} folder"


def classify(uses: str) -> Reference | None:
    """The reference ``uses`` makes to the originals, or None for any other action."""
    match = _USES.match(uses)
    if not match or match["owner"].lower() != "teleport-actions":
        return None
    repo, sub, ref = (
        f"{match['owner']}/{match['name']}",
        (match["sub"] or "").strip("/"),
        match["ref"],
    )
    name = f"teleport-actions/{match['name'].lower()}"
    if name == THIS_REPO:
        return Reference(uses, repo, sub, ref, "checkout", sub)
    if sub:
        return None
    if name == SETUP_REPO:
        return Reference(uses, repo, sub, ref, "setup", "")
    if name in ORIGINALS:
        return Reference(uses, repo, sub, ref, "member", ORIGINALS[name])
    return None


@dataclass(frozen=True)
class InputWarning:
    """GitHub's warning for ``with:`` keys the action does not declare, and where."""

    where: str
    message: str


@dataclass
class Scan:
    workflows: list[Path]
    references: list[Reference] = field(default_factory=list)
    labels: set[str] = field(default_factory=set)
    # (GITHUB_WORKFLOW as act sets it, job id) -> whether each place that job is
    # reached from grants `id-token: write`.
    oidc: dict[tuple[str, str], set[bool]] = field(default_factory=dict)
    warnings: list[InputWarning] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, reference: Reference) -> None:
        if reference not in self.references:
            self.references.append(reference)

    def mappings(self) -> list[str]:
        """The distinct ``owner/repo@ref`` act must map, in the order found."""
        return list(dict.fromkeys(r.mapping for r in self.references))

    def members(self) -> set[str]:
        """The checkout folders whose action runs."""
        return {r.folder for r in self.references if r.kind != "setup"}

    def checkout_folders(self) -> set[str]:
        """Folders of this checkout reached as ``teleport-actions/auth/<folder>``."""
        return {r.folder for r in self.references if r.kind == "checkout" and r.folder}

    def oidc_jobs(self) -> list[tuple[str, str]]:
        """Jobs given GitHub's OIDC variables: every place they are reached from grants it."""
        return sorted(key for key, grants in self.oidc.items() if grants == {True})

    def uses_setup(self) -> bool:
        return any(r.kind == "setup" for r in self.references)


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


def scan(repository: Path, files: Iterable[Path], checkout: Path | None = None) -> Scan:
    """Everything the selected workflows reach, read as described in the module's docstring."""
    scanner = _Scanner(repository.resolve(), (checkout or CHECKOUT).resolve(), Scan(list(files)))
    for path in scanner.found.workflows:
        scanner.workflow(path.resolve(), caller=None)
    return scanner.found


def id_token_write(block: Mapping[Any, Any]) -> bool | None:
    """Whether a workflow's or job's ``permissions`` grant ``id-token: write`` (None: unset)."""
    if "permissions" not in block:
        return None
    value = block["permissions"]
    if isinstance(value, str):
        return value.strip() == "write-all"
    if isinstance(value, dict):
        return str(value.get("id-token", "")).strip() == "write"
    return False  # `permissions:` with nothing: none at all


def unexpected_inputs(given: Iterable[str], action: Mapping[Any, Any]) -> str | None:
    """GitHub's warning for ``with:`` keys ``action`` does not declare (they match in any case)."""
    inputs = action.get("inputs")
    declared = [str(name) for name in inputs] if isinstance(inputs, dict) else []
    allowed = {name.casefold() for name in declared}
    runs = action.get("runs")
    if isinstance(runs, dict) and runs.get("using") == "docker":
        allowed |= set(_DOCKER_WITH)
    unexpected = [name for name in given if name.casefold() not in allowed]
    if not unexpected:
        return None
    valid = ", ".join(f"'{name}'" for name in declared)
    names = ", ".join(f"'{name}'" for name in unexpected)
    return f"Unexpected input(s) {names}, valid inputs are [{valid}]"


def _load(path: Path) -> dict[Any, Any] | None:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, yaml.YAMLError):
        return None  # act reports the file itself, better than we could
    return document if isinstance(document, dict) else None


def _action_file(folder: Path) -> Path | None:
    for name in ("action.yml", "action.yaml"):
        if (folder / name).is_file():
            return folder / name
    return None


@dataclass
class _Scanner:
    repository: Path
    checkout: Path
    found: Scan
    seen: set[tuple[Path, bool | None]] = field(default_factory=set)
    seen_actions: set[Path] = field(default_factory=set)

    def _rel(self, path: Path) -> str:
        for base in (self.repository, self.checkout):
            if path.is_relative_to(base):
                return str(path.relative_to(base))
        return str(path)

    def workflow(self, path: Path, caller: bool | None) -> None:
        """One workflow; ``caller`` is whether the job calling it grants the OIDC token."""
        if (path, caller) in self.seen:
            return
        self.seen.add((path, caller))
        document = _load(path)
        jobs = document.get("jobs") if document else None
        if document is None or not isinstance(jobs, dict):
            return
        # act sets GITHUB_WORKFLOW to the workflow's name, else to its file's name.
        name = document.get("name")
        key = str(name) if name else path.name
        workflow_grant = id_token_write(document)
        for job_id, job in jobs.items():
            if not isinstance(job, dict):
                continue
            own = id_token_write(job)
            own = workflow_grant if own is None else own
            # A called workflow's jobs get at most what the calling job has.
            granted = bool(own) if caller is None else caller and own is not False
            called = job.get("uses")
            if isinstance(called, str):
                self._called(called.strip(), granted, f"{self._rel(path)}: job {job_id}")
                continue
            self.found.labels |= set(_job_labels(job))
            self.found.oidc.setdefault((key, str(job_id)), set()).add(granted)
            self.steps(job.get("steps"), f"{self._rel(path)}: job {job_id}")

    def _called(self, uses: str, granted: bool, where: str) -> None:
        if not uses.startswith("./"):
            self.found.notes.append(f"{where} calls {uses}: act would fetch it (not followed)")
            return
        target = (self.repository / uses).resolve()
        if not target.is_file():
            self.found.notes.append(f"{where} calls {uses}, which does not exist here")
            return
        self.workflow(target, caller=granted)

    def steps(self, steps: object, where: str) -> None:
        for step in steps if isinstance(steps, list) else []:
            if not isinstance(step, dict) or not isinstance(step.get("uses"), str):
                continue
            uses = step["uses"].strip()
            # GitHub's name for a step without one.
            label = step.get("name") or f"Run {uses}"
            here = f'{where}, step "{label}"'
            given = [str(k) for k in step["with"]] if isinstance(step.get("with"), dict) else []
            if uses.startswith("./"):
                # GitHub resolves ./ against the workspace: the repository's root.
                self._action((self.repository / uses).resolve(), uses, given, here)
                continue
            reference = classify(uses)
            if reference is None:
                continue
            self.found.add(reference)
            folder = (
                SETUP_STANDIN if reference.kind == "setup" else self.checkout / reference.folder
            )
            self._action(folder, uses, given, here)

    def _action(self, folder: Path, uses: str, given: list[str], where: str) -> None:
        action_file = _action_file(folder)
        if action_file is None:
            return  # act says so when it runs the step
        document = _load(action_file)
        if document is None:
            return
        message = unexpected_inputs(given, document)
        if message:
            warning = InputWarning(f"{where} ({uses})", message)
            if warning not in self.found.warnings:
                self.found.warnings.append(warning)
        if action_file in self.seen_actions:
            return
        self.seen_actions.add(action_file)
        runs = document.get("runs")
        if isinstance(runs, dict) and runs.get("using") == "composite":
            self.steps(runs.get("steps"), f"{self._rel(action_file)} (used by {where})")


def _job_labels(job: dict[Any, Any]) -> Iterator[str]:
    """The labels a job runs on, including those a matrix spells out."""
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


def _matrix_values(job: dict[Any, Any], key: str) -> Iterator[str]:
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
