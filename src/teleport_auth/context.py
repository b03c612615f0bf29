"""The run's context: what every part of a run of tbot needs to know, gathered once."""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path

from teleport_auth import gha
from teleport_auth.config import build_config, redacted, to_yaml
from teleport_auth.family.spec import Member
from teleport_auth.inputs import Inputs
from teleport_auth.tbot import TbotVersion

# typing.TYPE_CHECKING without importing typing at run time (mypy reads it the same).
TYPE_CHECKING = False

if TYPE_CHECKING:
    from teleport_auth.family.spec import Plan
    from teleport_auth.tbot_schema import BotConfig


class Context:
    __slots__ = ("env", "inputs", "member", "plan", "tbot", "telemetry_on", "version", "workdir")

    def __init__(  # noqa: PLR0917 - the run's facts, each named at the one call
        self,
        env: MutableMapping[str, str],
        member: Member,
        plan: Plan,
        inputs: Inputs,
        tbot: str,
        version: TbotVersion,
        workdir: Path,
        telemetry_on: bool,
    ) -> None:
        self.env = env
        self.member = member
        self.plan = plan
        self.inputs = inputs
        self.tbot = tbot
        self.version = version
        # The run's private directory: tbot's output files, or a daemon's log.
        self.workdir = workdir
        self.telemetry_on = telemetry_on

    def config(self) -> BotConfig:
        """The tbot config for this run; logged (token redacted) in debug mode."""
        config = build_config(self.inputs, self.plan, self.workdir, oneshot=self.member.oneshot)
        if gha.is_debug(self.env):
            gha.debug("tbot configuration (token redacted):")
            for line in to_yaml(redacted(config)).splitlines():
                gha.debug(line)
        return config
