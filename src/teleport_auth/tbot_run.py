"""The skeleton both run modes share: a private config, tbot, telemetry beside it.

Every run of tbot, one-shot or in the background, goes the same way: the
config is written privately, telemetry starts beside tbot, the mode's
``launch`` runs tbot (to its end, or until it is ready), and the config, which
holds the token, is removed whatever happened. A ``TbotFailed`` from
``launch`` means tbot ran and failed: its run is still counted. Any other
failure (a bug, a cancelled step) abandons telemetry.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from teleport_auth import cancel, telemetry_run
from teleport_auth.config import make_private_dir, remove_private_dir, write_private_config
from teleport_auth.context import Context
from teleport_auth.gha import ActionFailure

Launched = TypeVar("Launched")


class TbotFailed(ActionFailure):
    """tbot ran and failed (or was not ready in time); the step fails with this."""


def run_tbot(context: Context, launch: Callable[[Path], Launched]) -> tuple[Launched, str]:
    """``launch(config_path)``'s result and the telemetry summary phrase."""
    config = context.config()
    config_dir = make_private_dir(context.workdir.parent)
    reporter, telemetry = telemetry_run.start(context, config)
    try:
        try:
            launched = launch(write_private_config(config, config_dir))
        finally:
            # The config holds the token: gone as soon as tbot is done with it.
            with cancel.deferred():
                remove_private_dir(config_dir)
    except TbotFailed:
        telemetry_run.finish(reporter, telemetry, tbot_succeeded=False)
        raise
    except BaseException:
        telemetry_run.abandon(reporter)
        raise
    return launched, telemetry_run.finish(reporter, telemetry, tbot_succeeded=True)
