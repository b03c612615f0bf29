"""The run's context: what every part of a run of tbot needs to know, gathered once."""

from __future__ import annotations

from collections.abc import MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from teleport_auth import gha
from teleport_auth.config import build_config, redacted, to_yaml
from teleport_auth.family.spec import Member
from teleport_auth.inputs import Inputs
from teleport_auth.tbot import TbotVersion

if TYPE_CHECKING:
    from teleport_auth.family.spec import Plan
    from teleport_auth.tbot_schema import BotConfig


class Context(NamedTuple):
    env: MutableMapping[str, str]
    member: Member
    plan: Plan
    inputs: Inputs
    tbot: str
    version: TbotVersion
    # The run's private directory: tbot's output files, or a daemon's log.
    workdir: Path
    telemetry_on: bool

    def config(self) -> BotConfig:
        """The tbot config for this run; logged (token redacted) in debug mode."""
        config = build_config(self.inputs, self.plan, self.workdir, oneshot=self.member.oneshot)
        if gha.is_debug(self.env):
            gha.debug("tbot configuration (token redacted):")
            for line in to_yaml(redacted(config)).splitlines():
                gha.debug(line)
        return config
