"""What describes one member of the family, and the inputs they all share.

A member is data plus three small functions: read its own inputs, add its
entry to the tbot config, and name what it publishes. The shared step
(``teleport_auth.step``) does everything else, and the action.yml files are
generated from these descriptions (``scripts/gen_actions``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from teleport_auth.inputs import Inputs

Version = tuple[int, int, int]
Own = TypeVar("Own")

# The daemon members' end-of-job step: the folder end-of-job/ of this repository,
# nested in their action.yml so that its post step stops tbot when the job ends. A
# nested `uses:` takes no expression (and `./` would mean the job's workspace), so
# it names a fixed ref: main on branches; a release pins it to its own commit.
END_OF_JOB_FOLDER = "end-of-job"
END_OF_JOB_REF = "main"
END_OF_JOB_USES = f"teleport-actions/auth/{END_OF_JOB_FOLDER}@{END_OF_JOB_REF}"


@dataclass(frozen=True)
class InputSpec:
    name: str
    description: str
    required: bool = False
    # What action.yml declares as the default; None: no default line.
    default: str | None = None


@dataclass(frozen=True)
class OutputSpec:
    name: str
    description: str


@dataclass(frozen=True)
class Published:
    """What a successful run hands to the job."""

    outputs: dict[str, str]
    # Exported to later steps unless disable-env-vars.
    exports: dict[str, str] = field(default_factory=dict)
    # Job summary rows: (label, plain text). Escaped when written.
    rows: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Entry:
    """One entry the member adds to the tbot config, under ``outputs`` or ``services``."""

    section: str
    value: dict[str, Any]


@dataclass(frozen=True)
class Daemon:
    """How the step runs a daemon member's tbot: where to ask for readiness, how long."""

    diag_port: int
    timeout_ms: int

    @property
    def diag_addr(self) -> str:
        return f"127.0.0.1:{self.diag_port}"


@dataclass(frozen=True)
class Member(Generic[Own]):
    key: str
    # The folder of its action.yml in this repository ("" for the root, auth).
    folder: str
    # The original action it replaces, as its helper name reports it.
    original: str
    title: str
    description: str
    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputSpec, ...]
    # Names of the variables it exports, for the documentation.
    exports: tuple[str, ...]
    min_tbot: Version
    read: Callable[[Mapping[str, str]], Own]
    entry: Callable[[Own, Path], Entry]
    publish: Callable[[Own, Inputs, Path], Published]
    # Further tbot versions some of its inputs need: (version, why).
    extra_requirements: Callable[[Own], tuple[tuple[Version, str], ...]] = lambda _own: ()
    # Values accepted as the original accepts them, but worth a ::warning::.
    warnings: Callable[[Own], tuple[str, ...]] = lambda _own: ()
    # Set for the members whose tbot keeps running in the background.
    daemon: Callable[[Own], Daemon] | None = None

    @property
    def oneshot(self) -> bool:
        return self.daemon is None

    @property
    def helper(self) -> str:
        """``_TBOT_TELEMETRY_HELPER``, exactly as the original reports it."""
        return f"gha:{self.original}"

    @property
    def uses(self) -> str:
        """What a workflow writes after ``uses:`` (without the ``@ref``)."""
        return "teleport-actions/auth" + (f"/{self.folder}" if self.folder else "")

    def requirements(self, own: Own) -> tuple[tuple[Version, str], ...]:
        return ((self.min_tbot, self.uses), *self.extra_requirements(own))


def directory_destination(path: Path) -> dict[str, str]:
    """The destination every one-shot member writes to, as the originals write it."""
    return {"type": "directory", "symlinks": "try-secure", "path": str(path)}


SHARED_INPUTS = (
    InputSpec(
        "proxy",
        "Address of the Teleport Proxy, as host[:port] (e.g. tele.example.com:443).",
        required=True,
    ),
    InputSpec(
        "token",
        "Name of the bot's GitHub join token (created with `tctl bots add` / a token resource).",
        required=True,
    ),
    InputSpec(
        "certificate-ttl",
        "How long the issued certificates are valid, as a Go duration (e.g. 30m, 1h30m). "
        "Empty: tbot's default (60m).",
        default="",
    ),
    InputSpec(
        "anonymous-telemetry",
        "Opt in to sending Teleport one anonymous tbot.start usage event per run: true/1 "
        "(any case) opts in, false/0 opts out, anything else warns and stays out. Empty (the "
        "default) follows TELEPORT_ANONYMOUS_TELEMETRY in the job's environment, read as tbot "
        'reads it, and is off when that is unset. See the README\'s "Anonymous telemetry" '
        "section for exactly what is sent.",
        default="",
    ),
    InputSpec(
        "ca-pins",
        "Optional CA pins of the Teleport cluster, one `sha256:<64 hex digits>` per line (as "
        "printed by `tctl status`).",
        default="",
    ),
    InputSpec(
        "disable-env-vars",
        "true (or 1, any case): do not export this action's environment variables to the "
        "following steps. Any other value is false, as in the original action (a value "
        "other than false/0/empty also warns).",
        default="false",
    ),
)
