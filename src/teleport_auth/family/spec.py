"""What describes one member of the family, and the inputs they all share.

A member is data plus one function, ``read``: it validates the member's own
inputs and returns its *plan* (see ``Plan``), which adds the member's entry to
the tbot config and names what it publishes. The shared step
(``teleport_auth.step``) does everything else, and the action.yml files are
generated from these descriptions (``scripts/gen_actions``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from teleport_auth.inputs import Inputs
from teleport_auth.record import Record

# typing.TYPE_CHECKING without importing typing at run time (mypy reads it the same).
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Protocol

    from teleport_auth.tbot_schema import DirectoryDestination, Output, Service

Version = tuple[int, int, int]
# (minimum tbot version, what needs it), e.g. ((17, 2, 8), "Input 'allow-reissue'").
Requirement = tuple[Version, str]

# The daemon members' end-of-job step: the folder end-of-job/ of this repository,
# nested in their action.yml so that its post step stops tbot when the job ends. A
# nested `uses:` takes no expression (and `./` would mean the job's workspace), so
# it names a fixed ref: main on branches; a release pins it to its own commit.
END_OF_JOB_FOLDER = "end-of-job"
END_OF_JOB_REF = "main"
END_OF_JOB_USES = f"teleport-actions/auth/{END_OF_JOB_FOLDER}@{END_OF_JOB_REF}"


# Plain classes with __slots__ rather than dataclasses or NamedTuples: the step
# imports this on every run, and those cost milliseconds of start-up each time.


class InputSpec(Record):
    __slots__ = ("default", "description", "name", "required")

    def __init__(
        self, name: str, description: str, required: bool = False, default: str | None = None
    ) -> None:
        self.name = name
        self.description = description
        self.required = required
        # What action.yml declares as the default; None: no default line.
        self.default = default


class OutputSpec(Record):
    __slots__ = ("description", "name")

    def __init__(self, name: str, description: str) -> None:
        self.name = name
        self.description = description


class Published(Record):
    """What a successful run hands to the job."""

    __slots__ = ("exports", "outputs", "rows")

    def __init__(
        self,
        outputs: dict[str, str],
        exports: Mapping[str, str] | None = None,
        rows: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.outputs = outputs
        # Exported to later steps unless disable-env-vars.
        self.exports: Mapping[str, str] = exports or {}
        # Job summary rows: (label, plain text). Escaped when written.
        self.rows = rows


class BackgroundSettings(Record):
    """How the step runs a daemon member's tbot: where to ask for readiness, how long."""

    __slots__ = ("diag_port", "timeout_ms")

    def __init__(self, diag_port: int, timeout_ms: int) -> None:
        self.diag_port = diag_port
        self.timeout_ms = timeout_ms

    @property
    def diag_addr(self) -> str:
        return f"127.0.0.1:{self.diag_port}"


if TYPE_CHECKING:

    class Plan(Protocol):
        """A member's own inputs, read and validated: all the step asks of a member."""

        def outputs(self, destination: Path) -> list[Output]:
            """The entries under the config's ``outputs:``, writing into ``destination``."""

        def services(self) -> list[Service]:
            """The entries under the config's ``services:``."""

        def publish(self, inputs: Inputs, destination: Path) -> Published:
            """The member's outputs, variables and summary rows after a successful run."""

        def requirements(self) -> tuple[Requirement, ...]:
            """tbot versions that some of these inputs need, beyond the member's minimum."""

        def warnings(self) -> tuple[str, ...]:
            """Values accepted as the original accepts them, but worth a ::warning::."""

        def background(self) -> BackgroundSettings | None:
            """For a daemon member: how to run its tbot in the background."""


class OneShotPlan:
    """What a one-shot member's plan has by default: outputs only, no extras."""

    __slots__ = ()

    def services(self) -> list[Service]:
        return []

    def requirements(self) -> tuple[Requirement, ...]:
        return ()

    def warnings(self) -> tuple[str, ...]:
        return ()

    def background(self) -> BackgroundSettings | None:
        return None


class Member:
    __slots__ = (
        "daemon",
        "description",
        "exports",
        "folder",
        "inputs",
        "key",
        "min_tbot",
        "original",
        "outputs",
        "read",
        "title",
    )

    def __init__(
        self,
        *,
        key: str,
        folder: str,
        original: str,
        title: str,
        description: str,
        inputs: tuple[InputSpec, ...],
        outputs: tuple[OutputSpec, ...],
        exports: tuple[str, ...],
        min_tbot: Version,
        read: Callable[[Mapping[str, str]], Plan],
        daemon: bool = False,
    ) -> None:
        self.key = key
        # The folder of its action.yml in this repository ("" for the root, auth).
        self.folder = folder
        # The original action it replaces, as its helper name reports it.
        self.original = original
        self.title = title
        self.description = description
        self.inputs = inputs
        self.outputs = outputs
        # Names of the variables it exports, for the documentation.
        self.exports = exports
        self.min_tbot = min_tbot
        # Reads and validates the member's own inputs (InputError names a bad one).
        self.read = read
        # Whether its tbot keeps running in the background (the daemon members).
        self.daemon = daemon

    @property
    def oneshot(self) -> bool:
        return not self.daemon

    @property
    def helper(self) -> str:
        """``_TBOT_TELEMETRY_HELPER``, exactly as the original reports it."""
        return f"gha:{self.original}"

    @property
    def uses(self) -> str:
        """What a workflow writes after ``uses:`` (without the ``@ref``)."""
        return "teleport-actions/auth" + (f"/{self.folder}" if self.folder else "")

    def requirements(self, plan: Plan) -> tuple[Requirement, ...]:
        return ((self.min_tbot, self.uses), *plan.requirements())


def directory_destination(path: Path) -> DirectoryDestination:
    """The destination every one-shot member writes to, as the originals write it."""
    return {"type": "directory", "symlinks": "try-secure", "path": str(path)}


SHARED_INPUTS = (
    InputSpec(
        "proxy",
        "Address of the Teleport Proxy, as host[:port] (e.g. tele.example.com:443); an "
        "https:// URL such as https://tele.example.com:443/ is taken as its host[:port].",
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
