"""act's ``--json`` log: shown as act shows it, and read for the summary.

The JSON form tells which job and which step every line belongs to, which
act's text form does not. It also carries the raw text of workflow commands
unmasked (``::add-mask::`` values among them) in fields beside the message:
only ``msg``, which act masks, is ever shown or kept.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

# act logs these when it serves a `uses:` from a --local-repository folder.
_MATCHED = re.compile(r"^LocalRepositoryCache matched (?P<url>\S+) with ref (?P<ref>\S+) to ")
_READ = re.compile(
    r"^LocalRepositoryCache read cachedir \S+ with ref \S+ and subpath '(?P<sub>[^']*)'"
)
_SET_OUTPUT = "::set-output:: "
# In host mode (-self-hosted) act needs no Docker, but says so anyway.
_DOCKER_NOISE = "Couldn't get a valid docker connection"
# act says this for every step it serves from a --local-repository folder: the
# mappings are printed once before the run instead.
_CACHE_CHATTER = "LocalRepositoryCache "
# act echoes these commands of a composite action's inner step again for the
# outer step (outputs, variables, the job summary): shown once per step.
_ECHOED = frozenset({"set-env", "set-output", "add-path", "summary", "add-mask"})


@dataclass
class Step:
    """A step of a job that uses this action (through our --local-repository mapping)."""

    ids: tuple[str, ...]
    name: str
    repo: str
    ref: str
    member: str = ""
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def uses(self) -> str:
        path = f"{self.repo}/{self.member}" if self.member else self.repo
        return f"{path}@{self.ref}"


@dataclass
class Job:
    name: str
    job_id: str = ""
    matrix: dict[str, Any] = field(default_factory=dict)
    result: str | None = None
    steps: dict[tuple[str, ...], Step] = field(default_factory=dict)
    # What its steps printed (masked): where an event's distinct_id shows which job sent it.
    text: list[str] = field(default_factory=list)

    def printed(self, needle: str) -> bool:
        return any(needle in line for line in self.text)


@dataclass
class ActLog:
    """Reads act's JSON lines one at a time; returns what to show for each.

    Unless ``verbose``, act's Docker warning, its note on each --local-repository step
    and its repeated command echoes are left out.
    """

    verbose: bool = False
    jobs: dict[str, Job] = field(default_factory=dict)
    _echoed: set[tuple[str, ...]] = field(default_factory=set)

    def feed(self, line: str) -> str | None:
        try:
            entry = json.loads(line)
        except ValueError:
            return line.rstrip("\n")  # not act's log: shown as it came
        if not isinstance(entry, dict) or not isinstance(entry.get("msg"), str):
            return line.rstrip("\n")
        message: str = entry["msg"].removesuffix("\n")
        # act -v logs much of its own at debug level; of that, only the steps'
        # ::debug:: lines are shown, as GitHub shows them with debug logging on.
        if entry.get("level") == "debug" and entry.get("command") != "debug":
            return None
        name = entry.get("job")
        if not isinstance(name, str):
            if _DOCKER_NOISE in message and not self.verbose:
                return None
            return f"act: {entry.get('level', 'info')}: {message}"
        # act pads job names to align its columns.
        job = self.jobs.setdefault(name.strip(), Job(name.strip()))
        self._record(job, entry, message)
        if not self.verbose and (
            message.startswith(_CACHE_CHATTER) or self._repeated(job, entry, message)
        ):
            return None
        return _render(name, entry, message)

    def _repeated(self, job: Job, entry: dict[str, Any], message: str) -> bool:
        if entry.get("command") not in _ECHOED:
            return False
        outer = [str(i) for i in entry.get("stepID") or ()][:1]
        key = (job.name, str(entry.get("stage", "")), *outer, message)
        if key in self._echoed:
            return True
        self._echoed.add(key)
        return False

    def _record(self, job: Job, entry: dict[str, Any], message: str) -> None:
        ids = tuple(str(i) for i in entry.get("stepID") or ())
        if isinstance(entry.get("jobID"), str):
            job.job_id = entry["jobID"]
        if isinstance(entry.get("matrix"), dict) and entry["matrix"]:
            job.matrix = entry["matrix"]
        if isinstance(entry.get("jobResult"), str):
            job.result = entry["jobResult"]
        if entry.get("raw_output") is True:
            job.text.append(message)
        matched = _MATCHED.match(message)
        if matched and ids:
            repo = matched["url"].removeprefix("https://github.com/").removesuffix(".git")
            job.steps[ids] = Step(ids, str(entry.get("step", "")), repo, matched["ref"])
        read = _READ.match(message)
        step = job.steps.get(ids)
        if read and step and read["sub"].endswith(("action.yml", "action.yaml")):
            step.member = read["sub"].rpartition("/")[0]
        if step and entry.get("command") == "set-output":
            output = str(entry.get("name", ""))
            _, sep, rest = message.partition(_SET_OUTPUT)
            if sep and rest.startswith(output + "="):
                step.outputs[output] = rest[len(output) + 1 :]


def _render(job: str, entry: dict[str, Any], message: str) -> str:
    """A line as act's text log shows it (without colours), each line of it tagged
    with its job: a job summary spans several, and matrix jobs interleave."""
    if entry.get("level") == "debug":
        prefix = f"[{job}] [DEBUG] "
    elif entry.get("raw_output") is True:
        prefix = f"[{job}]   | "
    else:
        prefix = f"[{job}] "
    first, *more = message.split("\n")
    return "\n".join([prefix + first, *(f"[{job}]   {line}" for line in more)])
