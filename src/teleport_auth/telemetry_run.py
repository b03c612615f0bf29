"""The step's telemetry around one run of tbot: started beside it, finished after it.

Telemetry never fails the job, even on a bug of ours: any error here becomes
one warning. An opted-out run never imports the telemetry package's sender.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from teleport_auth import HELPER_VERSION, gha

if TYPE_CHECKING:
    from teleport_auth.context import Context
    from teleport_auth.tbot_schema import BotConfig
    from teleport_auth.telemetry.reporter import Reporter

_BROKEN = (
    "Anonymous telemetry failed inside the action ({error}); nothing more is sent. "
    "Authentication is not affected."
)


def start(context: Context, config: BotConfig) -> tuple[Reporter | None, str]:
    """Start the submission alongside tbot; the summary phrase so far."""
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
        gha.warning(_BROKEN.format(error=f"{type(exc).__name__}: {exc}"))
        return None, "on: not sent (see the warning above)"
    if isinstance(started, str):
        return None, started
    return started, "on"


def finish(reporter: Reporter | None, summary: str, *, tbot_succeeded: bool) -> str:
    """Wait (bounded) for the outcome; the summary phrase."""
    if reporter is None:
        return summary
    try:
        return reporter.finish(tbot_succeeded=tbot_succeeded)
    except Exception as exc:
        reporter.abandon()
        gha.warning(_BROKEN.format(error=f"{type(exc).__name__}: {exc}"))
        return "on: outcome unknown (see the warning above)"


def abandon(reporter: Reporter | None) -> None:
    """The step failed before tbot finished: start nothing more."""
    if reporter is not None:
        reporter.abandon()
