"""What both ways of running tbot share: the run's context, its private files, telemetry."""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from teleport_auth import HELPER_VERSION, gha
from teleport_auth.config import build_config, private_dir, redacted, to_yaml, write_config
from teleport_auth.family.spec import Member
from teleport_auth.gha import ActionFailure
from teleport_auth.inputs import Inputs
from teleport_auth.runner_files import describe_os_error
from teleport_auth.tbot import TbotVersion

if TYPE_CHECKING:
    from teleport_auth.telemetry.reporter import Reporter

_TELEMETRY_BROKEN = (
    "Anonymous telemetry failed inside the action ({error}); nothing more is sent. "
    "Authentication is not affected."
)


@dataclass(frozen=True)
class Context:
    env: MutableMapping[str, str]
    member: Member[Any]
    own: Any
    inputs: Inputs
    tbot: str
    version: TbotVersion
    # The run's private directory: tbot's output files, or a daemon's log.
    workdir: Path
    telemetry_on: bool

    def config(self) -> dict[str, Any]:
        """The tbot config for this run; logged (token redacted) in debug mode."""
        entry = self.member.entry(self.own, self.workdir)
        config = build_config(self.inputs, entry, oneshot=self.member.oneshot)
        if gha.is_debug(self.env):
            gha.debug("tbot configuration (token redacted):")
            for line in to_yaml(redacted(config)).splitlines():
                gha.debug(line)
        return config


def make_private_dir(parent: Path) -> Path:
    try:
        return private_dir(parent)
    except OSError as exc:
        raise ActionFailure(
            f"Could not create a private directory in RUNNER_TEMP ({parent}): "
            f"{describe_os_error(exc)}."
        ) from None


def write_private_config(config: dict[str, Any], directory: Path) -> Path:
    try:
        return write_config(config, directory)
    except OSError as exc:
        raise ActionFailure(
            f"Could not write the tbot configuration in RUNNER_TEMP ({directory}): "
            f"{describe_os_error(exc)}."
        ) from None


def start_telemetry(context: Context, config: dict[str, Any]) -> tuple[Reporter | None, str]:
    """Start the submission alongside tbot. Telemetry never fails the job, even on a bug."""
    if not context.telemetry_on:
        return None, "off"
    try:
        # Imported only when opted in: an opted-out run never loads the telemetry code.
        from teleport_auth.telemetry import reporter  # noqa: PLC0415

        started = reporter.start(
            context.version.text,
            config,
            context.env,
            helper=context.member.helper,
            helper_version=HELPER_VERSION,
        )
    except Exception as exc:
        gha.warning(_TELEMETRY_BROKEN.format(error=f"{type(exc).__name__}: {exc}"))
        return None, "on: not sent (see the warning above)"
    if isinstance(started, str):
        return None, started
    return started, "on"


def finish_telemetry(reporter: Reporter | None, summary: str, *, tbot_succeeded: bool) -> str:
    if reporter is None:
        return summary
    try:
        return reporter.finish(tbot_succeeded=tbot_succeeded)
    except Exception as exc:
        reporter.abandon()
        gha.warning(_TELEMETRY_BROKEN.format(error=f"{type(exc).__name__}: {exc}"))
        return "on: outcome unknown (see the warning above)"


def abandon_telemetry(reporter: Reporter | None) -> None:
    if reporter is not None:
        reporter.abandon()
